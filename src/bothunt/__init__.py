"""bothunt: hunt for the use of botnets (MITRE ATT&CK T1583.005) in network telemetry."""

__version__ = "0.1.0"
