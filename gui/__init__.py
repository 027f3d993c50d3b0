"""The twostream desktop app: live video, live optical flow and per-stream scores in one window.

`twostream gui [SOURCE]` (see gui.cli) or `python -m gui`. The Qt modules are imported only by
gui.app and what it uses, so `import gui` and `gui.cli` stay light.
"""
