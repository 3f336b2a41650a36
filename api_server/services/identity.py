"""AuthMetadataService (GetOAuth2Metadata, GetPublicClientConfig: anonymous) and
IdentityService.UserInfo (`/me`: the caller's claims as OpenID UserInfo fields), §2.3, §11.

With authentication off the AuthMetadataService answers UNIMPLEMENTED, as flyteadmin (which does
not register it), and UserInfo describes the anonymous local user (flyteadmin: UNIMPLEMENTED,
after which flyteconsole leaves its execution tables empty; docs/decisions.md).
"""

from __future__ import annotations

import asyncio
from typing import NoReturn

from flyteidl.service import auth_pb2, identity_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from flyteadmin.api_server.context import ANONYMOUS, CallContext, Handler
from flyteadmin.core.auth.runtime import Auth
from flyteadmin.core.auth.tokens import Identity, unauthenticated
from flyteadmin.core.errors import AdminError, Code, unimplemented

AUTH_METADATA = "/flyteidl.service.AuthMetadataService/"
IDENTITY = "/flyteidl.service.IdentityService/"
AUTH_METADATA_METHODS = tuple(
    AUTH_METADATA + name for name in ("GetOAuth2Metadata", "GetPublicClientConfig")
)
# UserInfoResponse's named fields (OpenID Connect standard claims).
PROFILE = ("name", "preferred_username", "given_name", "family_name", "email", "picture")


def _off(method: str) -> Handler:
    name = method.rsplit("/", 1)[-1]

    async def handler(request: Message, ctx: CallContext) -> NoReturn:
        raise unimplemented(f"{name} is not implemented while authentication is off (auth.mode)")

    return handler


def user_info(identity: Identity) -> identity_pb2.UserInfoResponse:
    claims = dict(identity.claims)
    # A user token of the built-in server carries the user's profile under `user_info`.
    nested = found if isinstance(found := claims.get("user_info"), dict) else {}
    response = identity_pb2.UserInfoResponse(subject=identity.subject)
    for name in PROFILE:
        value = claims.get(name, nested.get(name))
        if isinstance(value, str):
            setattr(response, name, value)
    additional = struct_pb2.Struct()
    json_format.ParseDict(claims, additional)
    response.additional_claims.CopyFrom(additional)
    return response


async def anonymous_user_info(
    request: identity_pb2.UserInfoRequest, ctx: CallContext
) -> identity_pb2.UserInfoResponse:
    return user_info(ANONYMOUS)


def handlers(auth: Auth | None) -> dict[str, Handler]:
    if auth is None:
        return {method: _off(method) for method in AUTH_METADATA_METHODS} | {
            IDENTITY + "UserInfo": anonymous_user_info
        }
    client_config = json_format.ParseDict(
        auth.public_client_config(), auth_pb2.PublicClientAuthConfigResponse()
    )

    async def metadata(
        request: auth_pb2.OAuth2MetadataRequest, ctx: CallContext
    ) -> auth_pb2.OAuth2MetadataResponse:
        document = await asyncio.to_thread(auth.oauth2_metadata)  # external: a fetch
        try:
            # An external provider's document has more members than the message: drop them.
            return json_format.ParseDict(
                document, auth_pb2.OAuth2MetadataResponse(), ignore_unknown_fields=True
            )
        except json_format.ParseError as exc:
            raise AdminError(Code.UNAVAILABLE, f"unusable issuer metadata: {exc}") from None

    async def public_client_config(
        request: auth_pb2.PublicClientAuthConfigRequest, ctx: CallContext
    ) -> auth_pb2.PublicClientAuthConfigResponse:
        return client_config

    async def me(
        request: identity_pb2.UserInfoRequest, ctx: CallContext
    ) -> identity_pb2.UserInfoResponse:
        if ctx.identity is None:  # UserInfo is not an open method: the door let no one in
            raise unauthenticated("authentication is required")
        return user_info(ctx.identity)

    return {
        AUTH_METADATA + "GetOAuth2Metadata": metadata,
        AUTH_METADATA + "GetPublicClientConfig": public_client_config,
        IDENTITY + "UserInfo": me,
    }
