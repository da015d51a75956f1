"""Benchmarks for the budgets of docs/architecture.md §7, each measured beside a baseline in the same run."""
