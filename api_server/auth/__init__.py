"""Authentication at both doors and authorization in the handler registry (docs/auth.md).

``authentication``: the transport-neutral check both doors share; ``grpc_authentication`` and
``http_middleware``: the doors' thin adapters (plus the OAuth2 HTTP routes); ``authorization``:
the RPC -> (resource, verb) table and the registry wrapper asking Kubernetes.
"""
