"""Server pages of a platform, one module per page group: health, journal, messaging, plugins
(and the external command), reports.

Every page that needs the x86 sidecar says so when the sidecar cannot be reached (the client
raises ``ConnectionNotMade`` / ``CircuitOpen``) and never answers 500.
"""
