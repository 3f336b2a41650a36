"""Authentication and authorization logic, free of any transport (docs/auth.md).

``keys`` (RSA signing keys, JWKS), ``secrets`` (client secret hashes), ``tokens`` (verifying
bearer tokens into an ``Identity``), ``jwks`` (an external issuer's key set), ``server`` (the
built-in authorization server's token endpoint and metadata), ``access`` (Kubernetes
SubjectAccessReview decisions) and ``runtime`` (everything built from ``AuthSettings``).
"""
