"""Rehearsal (issue 10): replay a stream's traffic, minute by minute, against a model of the stream and a policy.

- trace: the trace CSV format (what producers offered each minute), read and written;
- simulator, alarm_eval, backtest: the stream model, CloudWatch's alarm rules, and the backtest that drives the
  real core with them.
"""
