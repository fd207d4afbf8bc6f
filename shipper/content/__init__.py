"""SIEM content generated from the shipper's own record structs and tables (Sentinel table, DCR
and ASIM parsers; the Splunk app's props.conf), so it cannot drift from what the shipper prints.
`python -m shipper.content --help`."""
