"""The middle: the pipeline of one page, the ledger of positions, and the engine that schedules."""
