"""The remote deployment's shape on one machine: moto for AWS, the images emulator for OpenAI, a stand-in API Gateway.

`gpt-image-mcp-remote` (or `RemoteShape` in Python) starts, all on loopback:

* moto's server (`moto_server`: DynamoDB writes atomic, as on AWS) with the template's bucket, queues and tables
  (`aws_resources`);
* the OpenAI images emulator;
* a Cognito hosted-login stand-in (`cognito`), so that the OAuth façade's flow (CIMD or DCR client, consent, sign-in,
  tokens) runs too: the demo user signs in with the printed password;
* an HTTP front that turns each request into an API Gateway HTTP API (payload 2.0) event, invokes the real MCP
  Lambda handler code (`McpFunction`, what `lambda_mcp.handler` runs) on one worker thread — one warm container, as
  on Lambda — and writes the Lambda proxy response back (status, headers, cookies, base64 bodies).

It creates an API key for a demo user and prints the MCP URL, the bearer token and a `claude mcp add` line. Image
links are presigned URLs on moto's loopback server: they download with curl or a browser. Nothing leaves the machine;
AWS credentials are dummies and no real key is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import secrets
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from local_sandbox.standins import shape_state
from local_sandbox.standins.api_gateway import ApiGatewayFront, LambdaContainer
from local_sandbox.standins.aws_resources import AwsClients, AwsNames, create_resources
from local_sandbox.standins.cognito import CognitoStandIn
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.lambda_context import REGION
from local_sandbox.standins.lifetime import StartStop
from local_sandbox.standins.moto_server import MotoServer
from local_sandbox.standins.sqs_driver import SqsDriver

if TYPE_CHECKING:
    from gpt_image_mcp.entry.lambda_mcp import McpFunction

DEMO_USER = "demo-user"
EXTRAS = ("boto3", "moto", "aws_lambda_powertools", "mangum")  # what the [aws,dev] extras bring
REQUIRED_SCOPE = "gpt-image-mcp/images"
EMULATOR_KEY = "sk-emulator-remote-shape"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass(slots=True)
class RemoteShape(StartStop):
    """Moto + emulator + API Gateway stand-in + the MCP function; `start()`/`stop()` or a `with` block."""

    host: str = "127.0.0.1"
    port: int = 0
    link_expiry_seconds: int = 3600
    demo_user: str = DEMO_USER
    demo_token: str | None = None  # a key made earlier, kept by the caller; None: a new one
    state_dir: Path | None = None  # data kept across restarts (shape_state); None: nothing outlives stop()
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    run_worker: bool = True  # drive the SQS worker from the queue, like the event source mapping does
    env: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    mcp_url: str = field(default="", init=False)
    token: str = field(default="", init=False, repr=False)
    emulator: EmulatorServer = field(init=False)
    cognito: CognitoStandIn = field(init=False)  # the hosted login the OAuth façade signs people in with
    login_password: str = field(default_factory=lambda: secrets.token_urlsafe(12), init=False, repr=False)
    function: McpFunction = field(init=False, repr=False)
    container: LambdaContainer = field(init=False)
    names: AwsNames | None = field(default=None, init=False)
    moto_url: str = field(default="", init=False)
    _moto: MotoServer | None = field(default=None, init=False)
    _front: ApiGatewayFront | None = field(default=None, init=False)
    worker_driver: SqsDriver | None = field(default=None, init=False)
    _saved_env: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def start(self) -> Self:
        from gpt_image_mcp.aws import clients
        from gpt_image_mcp.entry.lambda_mcp import McpFunction
        from gpt_image_mcp.entry.lambda_worker import WorkerFunction

        try:
            self._moto = MotoServer(self.host).start()
            self.moto_url = self._moto.url
            self._set_process_env({**AWS_ENV, "AWS_ENDPOINT_URL": self.moto_url})
            clients.reset_clients()
            self._moto.reset()  # moto's state is per process: start from a clean one, then make the resources
            aws = AwsClients(s3=clients.s3_client(), sqs=clients.sqs_client(), dynamodb=clients.dynamodb_client())
            self.names = create_resources(aws)
            if self.state_dir is not None:
                shape_state.restore(self.state_dir, aws, self.names)
            self.emulator = EmulatorServer(self.host).start()
            self.cognito = CognitoStandIn(clients.client("cognito-idp"), self.host).start()
            self.cognito.add_user(self.demo_user, self.login_password)
            self._front = ApiGatewayFront((self.host, self.port))
            self.mcp_url = f"http://{self.host}:{self._front.port}/mcp"
            self.env = self.lambda_env(self._front.port)
            self.function = McpFunction(self.env)
            self.container = self._front.container = LambdaContainer(self.function)
            if self.run_worker:
                env = self.env
                self.worker_driver = SqsDriver(
                    clients.sqs_client(), self.names.queue_url, lambda: WorkerFunction(env)
                ).start()
            self._front.start()
            self.token = self.demo_key()
        except BaseException:
            self.stop()
            raise
        return self

    def lambda_env(self, port: int) -> dict[str, str]:
        """The MCP function's environment, as template.yaml sets it, pointed at the local stand-ins."""
        assert self.names is not None, "start() first"
        hosts = f"{self.host}:{port},localhost:{port}"
        hosts_client = self.cognito.add_client([])  # a pre-registered MCP host, as template.yaml's UserPoolClient
        facade = self.cognito.add_client([f"http://{self.host}:{port}/oauth/callback"])
        return {
            **os.environ,
            **self.names.environment(),
            "LINK_EXPIRY_SECONDS": str(self.link_expiry_seconds),
            "MCP_ALLOWED_HOSTS": hosts,
            "MCP_RESOURCE_URL": f"http://{self.host}:{port}/mcp",
            "COGNITO_REQUIRED_SCOPE": REQUIRED_SCOPE,
            "OPENAI_API_KEY": EMULATOR_KEY,
            "OPENAI_BASE_URL": self.emulator.base_url,
            "MCP_REQUEST_STATE_KEY": secrets.token_hex(32),
            "COGNITO_ISSUER": self.cognito.issuer,
            "COGNITO_CLIENT_IDS": hosts_client.client_id,
            "OAUTH_TABLE": self.names.oauth_table,
            "COGNITO_DOMAIN": self.cognito.base_url,
            "OAUTH_UPSTREAM_CLIENT_ID": facade.client_id,
            "OAUTH_UPSTREAM_CLIENT_SECRET": facade.secret,
            "OAUTH_SIGNING_KEY": secrets.token_urlsafe(48),
            "POWERTOOLS_SERVICE_NAME": "gpt-image-mcp",
            **self.extra_env,
        }

    def create_key(self, user: str, scopes: Sequence[str] = ("images",), plaintext: str | None = None) -> str:
        """A new API key (bearer token) for `user`; `plaintext` brings one made earlier."""
        from gpt_image_mcp.aws import clients
        from gpt_image_mcp.aws.api_keys import ApiKeyStore

        assert self.names is not None, "start() first"
        store = ApiKeyStore(clients.dynamodb_client(), self.names.api_keys_table)
        key, _ = store.create(user, list(scopes), plaintext=plaintext)
        return key

    def demo_key(self) -> str:
        """The demo user's key: the one given, kept as it is when restored with the state, else a new one."""
        from gpt_image_mcp.aws import clients
        from gpt_image_mcp.aws.api_keys import ApiKeyStore

        assert self.names is not None, "start() first"
        known = ApiKeyStore(clients.dynamodb_client(), self.names.api_keys_table)
        if self.demo_token is not None and known.lookup(self.demo_token) is not None:
            return self.demo_token
        return self.create_key(self.demo_user, plaintext=self.demo_token)

    def keys_environment(self) -> dict[str, str]:
        """What `gpt-image-mcp-keys` needs to manage this shape's API keys from another terminal."""
        assert self.names is not None, "start() first"
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.moto_url, "API_KEYS_TABLE": self.names.api_keys_table}

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function directly with an event (bypassing the HTTP front)."""
        return self.container.invoke(event)

    def stop(self) -> None:
        driver, self.worker_driver = self.worker_driver, None
        if driver is not None:
            driver.stop()
        front, self._front = self._front, None
        if front is not None:
            front.stop()
        with contextlib.suppress(AttributeError):
            self.container.close()
        if self.state_dir is not None and self.names is not None and self._moto is not None and self.token:
            from gpt_image_mcp.aws import clients

            aws = AwsClients(s3=clients.s3_client(), sqs=clients.sqs_client(), dynamodb=clients.dynamodb_client())
            demo = shape_state.Demo(
                port=int(self.mcp_url.rsplit(":", 1)[1].split("/")[0]), user=self.demo_user, token=self.token
            )
            shape_state.save(self.state_dir, aws, self.names, demo)
        with contextlib.suppress(AttributeError):
            self.emulator.stop()
        with contextlib.suppress(AttributeError):
            self.cognito.stop()
        moto, self._moto = self._moto, None
        if moto is not None:
            moto.stop()
        self._restore_process_env()

    def _set_process_env(self, values: Mapping[str, str]) -> None:
        """boto3 reads credentials and the endpoint from the process environment; restored by `stop()`."""
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ.pop(name, None)
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

    def _restore_process_env(self) -> None:
        saved, self._saved_env = self._saved_env, {}
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with contextlib.suppress(Exception):
            from gpt_image_mcp.aws import clients

            clients.reset_clients()


def missing_extras() -> list[str]:
    """The modules of the [aws,dev] extras this environment lacks."""
    missing = []
    for module in EXTRAS:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gpt-image-mcp-remote",
        description=(
            "Run the remote (AWS) shape of the MCP server on loopback: moto for S3/DynamoDB/SQS, the OpenAI images "
            "emulator, and an API Gateway stand-in in front of the Lambda handler. Nothing leaves this machine."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="port of the MCP endpoint; 0 picks a free one")
    parser.add_argument("--user", default=None, help=f"user id of the demo API key (default: {DEMO_USER})")
    parser.add_argument(
        "--token", default=None, help="the demo API key to use (one printed before, to keep a client's line valid)"
    )
    parser.add_argument("--link-expiry", type=int, default=3600, help="presigned link lifetime in seconds")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep images, history, jobs and keys here across restarts, with the port and the demo key",
    )
    args = parser.parse_args(argv)
    missing = missing_extras()
    if missing:
        print(
            f"gpt-image-mcp-remote: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: the "
            "remote shape needs the aws and dev extras. In the checkout: .venv/bin/pip install -e '.[aws,dev]'",
            file=sys.stderr,
        )
        return 2

    from gpt_image_mcp.core.errors import UserFacingError

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    kept = shape_state.read_demo(args.state_dir) if args.state_dir is not None else None
    shape = RemoteShape(
        port=args.port or (kept.port if kept else 0),
        link_expiry_seconds=args.link_expiry,
        demo_user=args.user or (kept.user if kept else DEMO_USER),
        demo_token=args.token or (kept.token if kept else None),
        state_dir=args.state_dir,
    )
    try:
        shape.start()
    except UserFacingError as error:
        print(f"gpt-image-mcp-remote: --token: {error.message}", file=sys.stderr)
        return 2
    try:
        print(f"MCP URL:      {shape.mcp_url}", flush=True)
        print(f"Bearer token: {shape.token}  (user {shape.demo_user!r})", flush=True)
        print(
            f'Claude Code:  claude mcp add --transport http gpt-image-remote {shape.mcp_url} --header "Authorization: '
            f'Bearer {shape.token}"',
            flush=True,
        )
        print(
            f"OAuth:        add {shape.mcp_url} by URL alone; sign in at the Cognito stand-in as {shape.demo_user!r} "
            f"with password {shape.login_password}",
            flush=True,
        )
        print(
            "API keys:     in another terminal, with these set, run gpt-image-mcp-keys create --user NAME", flush=True
        )
        for name, value in shape.keys_environment().items():
            print(f"  export {name}={value}", flush=True)
        print(f"AWS (moto):   {shape.moto_url}   OpenAI emulator: {shape.emulator.base_url}", flush=True)
        print(
            "Remote shape running on loopback (moto + emulator, not AWS or OpenAI); Ctrl-C stops it.", file=sys.stderr
        )
        stop.wait()
    finally:
        shape.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
