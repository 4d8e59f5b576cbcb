"""The scripted demo video: the real system driven in a real browser, filmed, narrated.

``fmnist video record`` (``make video``) starts the system (:mod:`fmnist.video.system`), plays
the scenes of :mod:`fmnist.video.scenes` in headless Chromium while
:mod:`fmnist.video.recorder` films them, and writes the MP4, its WebVTT subtitles
(:mod:`fmnist.video.vtt`), a poster image and a manifest (:mod:`fmnist.video.record`).
"""
