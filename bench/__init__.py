"""On-demand benchmarks of the API server against a real kube-apiserver (see bench/README.md).

They print figures and never assert timings; they are not part of the test suite.
"""
