"""Print, as JSON, the functions and API routes that the SAM CLI's own providers find in a template.

Run with the python of the SAM tools venv (infra/scripts/validate.sh makes it; aws-sam-cli pins its own dependencies,
so it is not importable from the project's venv): `python sam_routes.py template.yaml`. These are the providers that
`sam local start-api` and `sam local invoke` use, so a route listed here is one they serve.
"""

from __future__ import annotations

import json
import sys

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider


def main(template: str) -> None:
    stacks, _ = SamLocalStackProvider.get_stacks(template)
    routes = [
        {
            "function": route.function_name,
            "path": route.path,
            "methods": sorted(route.methods),
            "event_type": route.event_type,
            "payload_format_version": route.payload_format_version,
        }
        for api in ApiProvider(stacks).get_all()
        for route in api.routes
    ]
    functions = sorted(function.name for function in SamFunctionProvider(stacks).get_all())
    print(json.dumps({"functions": functions, "routes": routes}))


if __name__ == "__main__":
    main(sys.argv[1])
