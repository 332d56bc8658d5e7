"""`gpt-image-mcp-keys`: the operator's tool to create, list and revoke API keys of the remote server.

Uses the operator's AWS credentials and region (the usual AWS_PROFILE / AWS_REGION / AWS_ENDPOINT_URL variables) and
the table in API_KEYS_TABLE, or --table (the stack output ApiKeysTableName).

A user's storage folder comes from their user id (see `identity.user_from_subject`): give a Cognito user's `sub` as
--user to let the key reach the same images and history as that user's sign-in; any other id gets its own folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from gpt_image_mcp.aws.api_keys import DEFAULT_SCOPES, ApiKeyRecord, ApiKeyStore
from gpt_image_mcp.core.errors import UserFacingError

NO_REGION = (
    "no AWS region is set: set AWS_DEFAULT_REGION to the stack's region (e.g. AWS_DEFAULT_REGION=eu-west-1), or "
    "AWS_PROFILE to a profile that has one."
)
NO_CREDENTIALS = (
    "no AWS credentials were found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for the local "
    "remote shape, the lines gpt-image-mcp-remote prints)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpt-image-mcp-keys", description="Manage API keys of gpt-image-mcp.")
    parser.add_argument("--table", help="API keys table (default: $API_KEYS_TABLE)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--user", required=True, help="user id (a Cognito sub shares that user's folder)")
    create.add_argument(
        "--scopes", default=",".join(DEFAULT_SCOPES), help="comma separated scopes (default: %(default)s)"
    )
    create.add_argument("--expires-days", type=int, default=None, help="days until the key expires (default: never)")
    listing = commands.add_parser("list", help="list a user's keys")
    listing.add_argument("--user", required=True)
    revoke = commands.add_parser("revoke", help="revoke a key by its id (or gim_<id> prefix)")
    revoke.add_argument("--user", required=True)
    revoke.add_argument("key_id")
    return parser


def _expiry(record: ApiKeyRecord) -> str:
    if record.expires_at is None:
        return "never"
    return datetime.fromtimestamp(record.expires_at, UTC).isoformat(timespec="seconds")


def _status(record: ApiKeyRecord) -> str:
    if record.revoked:
        return "revoked"
    return "active" if record.is_active() else "expired"


def _as_dict(record: ApiKeyRecord) -> dict[str, object]:
    return {
        "key_id": record.key_id,
        "user_id": record.user_id,
        "scopes": record.scopes,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "status": _status(record),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    table = args.table or os.environ.get("API_KEYS_TABLE", "").strip()
    if not table:
        print("gpt-image-mcp-keys: give --table or set API_KEYS_TABLE.", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    from gpt_image_mcp.aws.clients import dynamodb_client

    try:
        store = ApiKeyStore(dynamodb_client(), table)
        if args.command == "create":
            scopes = [scope for scope in args.scopes.split(",") if scope.strip()]
            plaintext, record = store.create(args.user, scopes, args.expires_days)
            if args.json:
                print(json.dumps({"api_key": plaintext, **_as_dict(record)}))
            else:
                print(plaintext)
                print(
                    f"key id {record.key_id} for user {record.user_id}; scopes {' '.join(record.scopes)}; "
                    f"expires {_expiry(record)}. Store the key now: it cannot be shown again.",
                    file=sys.stderr,
                )
        elif args.command == "list":
            records = store.list(args.user)
            if args.json:
                print(json.dumps([_as_dict(record) for record in records]))
            else:
                for record in records:
                    print(
                        f"{record.key_id}  {_status(record):8}  created {record.created_at}  "
                        f"expires {_expiry(record)}  scopes {' '.join(record.scopes)}"
                    )
        else:
            record = store.revoke(args.key_id, args.user)
            print(json.dumps(_as_dict(record)) if args.json else f"revoked {record.key_id} of user {record.user_id}")
    except UserFacingError as error:
        print(f"gpt-image-mcp-keys: {error.message}", file=sys.stderr)
        return 1
    except NoRegionError:
        print(f"gpt-image-mcp-keys: {NO_REGION}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print(f"gpt-image-mcp-keys: {NO_CREDENTIALS}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"gpt-image-mcp-keys: AWS refused the request: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
