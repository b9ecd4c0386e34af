"""What is evaluated: the task registry, protocol profiles, the table of task types, and how a task
is built and loaded (hub repos, local mirrors, the 2023 layouts, the cross-lingual tasks, subsamples)."""
