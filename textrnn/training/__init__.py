"""The training loop, batching and metrics; none of it knows which model it trains."""
