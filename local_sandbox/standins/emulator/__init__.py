"""An offline stand-in for the OpenAI Images API, so the server and its tests run without a key or network.

It speaks the real API's HTTP shapes to the official `openai` SDK on loopback: `/v1/images/generations`
and `/v1/images/edits`, plain or streamed (server-sent events), with validation, usage figures and error bodies
modelled on the documented API, plus fault injection (rate limits, 5xx, hangs, dropped connections, answers that
are not sound images) and a request log.
It is not OpenAI: it marks every answer with `x-emulator: gpt-image-mcp`, never needs a real API key
(any non-empty key works), and its pictures are generated gradients. Run it alone with
`python -m local_sandbox.standins.emulator`.
"""

from local_sandbox.standins.emulator.server import EmulatorServer

__all__ = ["EmulatorServer"]
