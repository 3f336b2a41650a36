"""Who is calling: the bearer token from the metadata (gRPC) or headers (HTTP), verified by the
one ``Verifier`` of ``core.auth``. Both doors call ``Authenticator.authenticate``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from flyteadmin.core import metrics
from flyteadmin.core.auth.runtime import Auth
from flyteadmin.core.auth.tokens import Identity, Unauthenticated, unauthenticated
from flyteadmin.core.errors import AdminError, Code

AUTH_METADATA = "/flyteidl.service.AuthMetadataService/"
# Anonymous RPCs: what a client needs to learn how to get a token (flyteadmin: the same two).
OPEN_METHODS = frozenset(
    {AUTH_METADATA + "GetOAuth2Metadata", AUTH_METADATA + "GetPublicClientConfig"}
)


class Authenticator:
    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self.header = auth.settings.header.lower()

    def token_of(self, metadata: Mapping[str, str]) -> str:
        """The bearer token; the configured header wins over `authorization` (flyteadmin copies
        it over, since a proxy in front may own `authorization`)."""
        value = (self.header and metadata.get(self.header)) or metadata.get("authorization")
        if not value:
            raise unauthenticated(
                f"missing credentials: send 'authorization: Bearer <token>' or "
                f"'{self.auth.settings.header}: Bearer <token>'",
                "missing_credentials",
            )
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated(
                "malformed authorization header: expected 'Bearer <token>'", "malformed_header"
            )
        return token.strip()

    async def authenticate(self, metadata: Mapping[str, str]) -> Identity:
        """The caller, or AdminError(UNAUTHENTICATED)."""
        try:
            token = self.token_of(metadata)
            verifier = self.auth.verifier
            if self.auth.blocking:  # may fetch the issuer's JWKS
                return await asyncio.to_thread(verifier.verify, token)
            return verifier.verify(token)
        except AdminError as error:
            count_failure(error)
            raise


def count_failure(error: AdminError) -> None:
    """An authentication or authorization refusal in the auth failure metric, by reason."""
    if isinstance(error, Unauthenticated):
        metrics.auth_failure(error.reason)
    elif error.code in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED):
        metrics.auth_failure(error.code.name.lower())
