"""A simulated Hyper-V host behind a WS-Management endpoint (test tooling only)."""
