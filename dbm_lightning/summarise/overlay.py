"""A labelled video, for users who have the recording: every frame of the video with the
skeleton of every animal drawn from the pose and the predicted behaviour written in its corner
(:func:`labelled_video`). Optional: it needs the ``video`` extra (``imageio-ffmpeg``, which
brings its own ffmpeg), and nothing else in the project needs a video.

Frames are decoded and encoded by ffmpeg through ``imageio-ffmpeg``'s pipes and drawn with
Pillow, one frame at a time: the video is streamed, never held in memory.
"""

from __future__ import annotations

__all__ = ["labelled_video", "video_tools"]

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.analysis.plot_style import categorical_colors
from dbm_lightning.atomic import atomic_path
from dbm_lightning.errors import DataFormatError
from dbm_lightning.session import Session
from dbm_lightning.summarise.bout_poses import check_labels, session_edges


def video_tools() -> Any:
    """The ``imageio_ffmpeg`` module that reads and writes the frames (the ``video`` extra).

    Raises
    ------
    RuntimeError
        When it is not installed, saying how to install it.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RuntimeError(
            "labelled videos need imageio-ffmpeg (it reads and writes the frames): "
            "pip install 'dbm-lightning[video]'"
        ) from None
    return imageio_ffmpeg


def _rgb(colour: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(round(255 * float(c))) for c in colour[:3])
    return r, g, b


def labelled_video(
    video: str | Path,
    session: Session,
    labels: np.ndarray,
    names: Sequence[str],
    out_path: str | Path,
    *,
    start: int = 0,
    frames: int | None = None,
) -> dict:
    """Write ``out_path`` (``.mp4``): frames ``start .. start + frames - 1`` of ``video``
    (default: to the end of the shorter of video and pose) with the session's skeletons and
    labels drawn on them.

    Parameters
    ----------
    video
        The recording the pose was tracked on (frame ``i`` of the video is pose row ``i``).
    session, labels, names
        The pose (every animal drawn in its own colour) and ``(T,)`` codes into ``names``
        (-1: no label, e.g. an invalid pose; shown as ``-``).
    start, frames
        The part of the video to write (the frames before ``start`` are decoded and skipped).

    Returns
    -------
    ``{"path", "frames"`` (written), ``"video_ended"`` (the video ran out before the pose or
    ``frames`` did), ``"pose_frames", "size"}``.

    Raises
    ------
    DataFormatError
        The video is missing or ffmpeg cannot read it, or ``start`` is past its end or the
        pose's.
    RuntimeError
        Without ``imageio-ffmpeg`` (the ``video`` extra).
    """
    from PIL import Image, ImageDraw, ImageFont

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise ValueError(f"{out_path}: a labelled video is written as .mp4")
    imageio_ffmpeg = video_tools()

    video = Path(video)
    if not video.is_file():
        raise DataFormatError(video, f"video of session {session.name!r} not found")
    (lab,) = check_labels([session], [labels])
    if start < 0 or start >= session.n_frames:
        raise DataFormatError(
            video, f"start frame {start} is outside the {session.n_frames} frames"
        )
    stop = session.n_frames if frames is None else min(session.n_frames, start + int(frames))
    pose = session.animal_pose()
    edges = session_edges(session)
    colours = [_rgb(c) for c in categorical_colors(max(pose.shape[1], 1))]
    text = np.asarray([*names, "-"], dtype=object)[np.where(lab >= 0, lab, len(names))]
    with contextlib.ExitStack() as stack:
        try:
            reader = imageio_ffmpeg.read_frames(str(video))
            stack.callback(reader.close)
            meta = next(reader)
        except (RuntimeError, OSError, StopIteration) as exc:
            raise DataFormatError(video, f"ffmpeg cannot read this video ({exc})") from None
        width, height = (int(v) for v in meta["size"])
        rate = float(meta.get("fps") or session.fps or 30.0)
        radius = max(2, round(min(width, height) / 160))
        try:
            font = ImageFont.load_default(size=max(10, height // 32))
        except TypeError:  # Pillow < 10.1: the small bitmap font
            font = ImageFont.load_default()
        tmp = stack.enter_context(atomic_path(out_path))
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (width, height), fps=rate, ffmpeg_log_level="error", macro_block_size=1,
            # H.264 needs even sizes: pad odd ones by a pixel (the pose keeps its coordinates)
            output_params=["-f", "mp4", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"],
        )  # fmt: skip
        writer.send(None)
        stack.callback(writer.close)
        written, seen = 0, 0
        for i, raw in enumerate(reader):
            seen = i + 1
            if i < start:
                continue
            if i >= stop:
                break
            image = Image.frombytes("RGB", (width, height), raw)
            draw = ImageDraw.Draw(image)
            for animal, colour in enumerate(colours[: pose.shape[1]]):
                points = pose[i, animal]
                for a, b in edges:
                    if np.isfinite(points[[a, b]]).all():
                        draw.line([tuple(points[a]), tuple(points[b])], fill=colour, width=2)
                for x, y in points[np.isfinite(points).all(axis=1)]:
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
            caption = f"{session.name}  frame {i}  {text[i]}"
            draw.rectangle(draw.textbbox((4, 4), caption, font=font), fill=(0, 0, 0))
            draw.text((4, 4), caption, fill=(255, 255, 255), font=font)
            writer.send(np.asarray(image).tobytes())
            written += 1
        if written == 0:  # the atomic write is abandoned: nothing is left at out_path
            raise DataFormatError(video, f"has {seen} frames: none from frame {start} on")
    return {
        "path": str(out_path),
        "frames": written,
        "video_ended": seen < stop,
        "pose_frames": session.n_frames,
        "size": [width, height],
    }
