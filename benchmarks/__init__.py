"""Benchmarks for the budgets of DESIGN §7, each measured beside a baseline in the same run."""
