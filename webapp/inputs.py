"""The page's upload components, each handing its event a path and naming an unusable file in the page.

Their preprocessing is wrapped on the instance rather than in a subclass: Gradio writes a ``.pyi`` copy
of the module beside any file that subclasses a component, at every import.
"""

from __future__ import annotations

import re

import gradio as gr
from PIL import Image

from face_nerf.photo import MAX_PIXELS as MAX_PHOTO_PIXELS


def photo_input(files=None, **kwargs) -> gr.Image:
    """An image upload whose unreadable files (a text file renamed .jpg, a damaged photo) get a message
    in the page instead of a bare error. ``files`` (``webapp.sessions.SessionFiles``) learns which
    upload each decoded photo came from, so both go with the visitor's session.
    """
    image = gr.Image(**kwargs)
    preprocess = image.preprocess

    def readable(payload):
        try:
            decoded = preprocess(payload)
            if files is not None and decoded and getattr(payload, "path", None):
                files.derived(decoded, payload.path)
            return decoded
        except Image.DecompressionBombError as err:  # before any pixel is decoded
            size = re.search(r"\((\d+) pixels\)", str(err))
            raise gr.Error(_too_large(_name(payload, "The image"), int(size.group(1)) if size else None)) from err
        except (OSError, ValueError, SyntaxError) as err:
            raise gr.Error(_not_an_image(_name(payload, "The file"), err)) from err

    image.preprocess = readable
    return image


def check_upload(payload) -> tuple:
    """Check a photo as soon as it is uploaded (an ``upload`` event with ``preprocess=False``: Gradio's raw
    file record): (the input's new value, a message). An unreadable or too large file is taken out of the
    input, with ``photo_input``'s message; a good one is left as it is, with no message."""
    record = payload if isinstance(payload, dict) else vars(payload) if payload is not None else {}
    path, name = record.get("path"), record.get("orig_name") or "The file"
    if not path:
        return gr.skip(), ""
    try:
        with Image.open(path) as image:
            pixels = image.width * image.height
            image.verify()
    except Image.DecompressionBombError:
        return None, _too_large(name, None)
    except (OSError, ValueError, SyntaxError) as err:
        return None, _not_an_image(name, err)
    if pixels > MAX_PHOTO_PIXELS:
        return None, _too_large(name, pixels)
    return gr.skip(), ""


def _name(payload, default: str) -> str:
    return getattr(payload, "orig_name", None) or default


def _not_an_image(name: str, err: Exception) -> str:
    return (f"{name} is not an image that can be read ({type(err).__name__}). Upload a JPEG, PNG or WebP photo "
            "of a face.")


def _too_large(name: str, pixels: int | None) -> str:
    """The message for a photo over the limit (``pixels`` None: Pillow's bomb guard, count unknown)."""
    count = f"{pixels / 1e6:,.0f} megapixels" if pixels else "too many pixels"
    return (f"{name} has {count}; the limit is {MAX_PHOTO_PIXELS / 1e6:.0f} megapixels. Downscale it (a face "
            "photo of 1-4 megapixels is plenty) and upload it again.")


def clip_input(file_count: str = "single", **kwargs) -> gr.File:
    """An upload whose events receive the uploaded file's path (``file_count="multiple"``: a list of
    paths). (Gradio's own ``gr.File(type="filepath")`` leaves an empty temporary file in its cache at
    every call; the judge checks the file's type itself, with a message.)"""
    upload = gr.File(type="filepath", file_count=file_count, **kwargs)

    def path_of(payload):
        if payload is None:
            return None
        files = payload.root if hasattr(payload, "root") else payload if isinstance(payload, list) else [payload]
        return [f.path for f in files] if file_count == "multiple" else files[0].path

    upload.preprocess = path_of
    return upload
