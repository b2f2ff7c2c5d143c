"""The app's front door: the port a browser or a client talks to, run by the supervisor in a thread
of its own (port_relay.py, with http_framing.py's parser), and the sticky-session rules
(sessions.py) that it shares with each replica's middleware and with Serve's request router.

Light: it may import serving.core, httptools and the standard library, nothing of Ray, Gradio,
torch, transformers or Qt (docs/ARCHITECTURE.md).
"""
