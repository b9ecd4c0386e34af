"""What is shown from result files alone: the run summary, the one averaging rule, leaderboard tables and
their rendering, published reference rows, model cards, and `compare` with its significance tests."""
