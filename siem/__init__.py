"""Evidence streamed out: each owner's audit events to their SIEM over syslog (RFC 5424) on TCP
with TLS (RFC 5425, octet-counted frames as RFC 6587 describes), in chain order, by the outbox
worker; `manage.py siem_verify` (or `python siem/verify.py`) checks the chain from the streamed
records alone."""
