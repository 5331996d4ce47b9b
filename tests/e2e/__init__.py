"""GraphiQL in headless Chromium against the running gateway."""
