"""AWS fixtures: one moto server on loopback for the session, reset before every test, with the stack's bucket and
tables created from the key schemas of template.yaml. Code under test uses plain boto3 over HTTP: only the
environment (AWS_ENDPOINT_URL and dummy credentials) points it at moto.

The tables are made by hand (`aws_support.create_resources`, ~20 ms) rather than with
`local_sandbox.standins.aws_resources.create_resources` (~0.5 s each time);
`test_the_fixture_tables_match_template_yaml` checks that the two agree.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aws_support import NAMES, Names, create_resources

from gpt_image_mcp.aws import clients
from local_sandbox.standins.moto_server import MotoServer

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = MotoServer().start()
    endpoint = server.url
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", "test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        clients.reset_clients()
        try:
            yield endpoint
        finally:
            clients.reset_clients()
            server.stop()


@pytest.fixture
def aws(moto_endpoint: str) -> Names:
    """A clean moto (all state dropped) holding the stack's bucket and tables."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    create_resources(clients.s3_client(), clients.dynamodb_client(), NAMES)
    return NAMES


@pytest.fixture
def s3(aws: Names) -> Any:
    return clients.s3_client()


@pytest.fixture
def dynamodb(aws: Names) -> Any:
    return clients.dynamodb_client()
