"""An OAuth authorization server in front of Cognito, so that MCP hosts that register themselves can sign users in.

Cognito offers neither Client ID Metadata Documents (CIMD) nor Dynamic Client Registration (RFC 7591), which hosts
such as claude.ai, Claude Desktop and VS Code use. This package is the thin façade the MCP function serves in front
of it: metadata (RFC 8414), CIMD and DCR clients, `/authorize` with PKCE S256 and RFC 8707 `resource`, our own
per-client consent, Cognito's hosted login with the façade's own callback, and `/token` issuing tokens whose subject
is the Cognito `sub`, revoked together per sign-in (`oauth.grants`). Every piece of flow state lives in DynamoDB, so
any container can finish a flow.

Import direction: entry.lambda_mcp -> oauth.routes -> oauth.{consent, provider} -> oauth.{grants, upstream,
client_metadata, redirects} -> oauth.{store, tokens}. The request parsing and the checks the OAuth specs fix (PKCE,
redirect URI, code and refresh grants) are the MCP SDK's own handlers (`mcp.server.auth.handlers`); this package
supplies the provider they call and what the SDK does not do (CIMD, consent, the upstream leg, rate limits, grant
revocation).
"""
