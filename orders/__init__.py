"""The worked example of the demo project: orders paid through Stripe, pushes from GitHub.

Not part of the package: it shows how a project uses ``webhooks.handler``.
"""
