"""Live margins, trades and quotes: the upstream SignalR bridge and its channel-layer fan-out.

``signalr`` speaks the hub protocol, ``bridge`` keeps one hub connection per platform and
publishes compact, coalesced updates, ``groups`` names the channel-layer groups, ``store``
keeps the latest margin state for page hydration, ``runner`` supervises the bridges (lazily
inside the ASGI process, or as ``manage.py stream``) and ``locks`` keeps it to one per platform.
"""
