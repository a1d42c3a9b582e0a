"""The HTTPS reverse proxy in front of devpi-server (issue 11): nginx config, container spec, component.

``nginx`` renders the one nginx site (pure); ``spec`` turns the proxy settings into the container and
the host files it needs (pure); ``component`` declares them with Pulumi. See docs/tls.md.
"""
