"""The network edge: the HTTP client (pacing, retries) and OAuth."""
