"""Telling people when something is wrong: endpoint health and the notifiers.

:mod:`webhooks.alerts.health` turns handler outcomes into the signals
``endpoint_unhealthy`` and ``endpoint_recovered``; :mod:`webhooks.alerts.notify`
receives those and ``event_dead`` and tells a person, debounced per endpoint.
"""
