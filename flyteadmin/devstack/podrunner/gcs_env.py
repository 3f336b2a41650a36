"""What a task container needs to read and write ``gs://`` on the local GCS emulator.

flytekit reaches GCS through fsspec's gcsfs (``FileAccessProvider``), not through
google-cloud-storage, so these are gcsfs' and fsspec's settings (checked with flytekit 1.16 and
gcsfs 2026.10):

- ``STORAGE_EMULATOR_HOST``: gcsfs sends every request to this endpoint instead of Google's.
- ``FSSPEC_GS_TOKEN=anon``: fsspec's per-protocol default (``FSSPEC_<protocol>_<kwarg>``) for
  gcsfs' ``token``; without it gcsfs tries Google's default credentials first, which probes the
  GCE metadata server (an address off this machine). The emulator checks no credentials.
- ``NO_GCE_CHECK=true``: belt and braces, gcsfs then never tries the metadata server.
- ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``: recent gcsfs asks each bucket for its storage
  layout over gRPC+TLS before the first read; the emulator speaks neither, and the call retries
  for a minute per bucket before gcsfs falls back to the JSON API.
"""

from __future__ import annotations


def gcs_emulator_env(endpoint: str) -> dict[str, str]:
    """``extra_env`` for ``RunnerOptions``: gs:// in containers goes to the emulator at
    ``endpoint`` (``http://127.0.0.1:<port>``)."""
    return {
        "STORAGE_EMULATOR_HOST": endpoint,
        "FSSPEC_GS_TOKEN": "anon",
        "NO_GCE_CHECK": "true",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
