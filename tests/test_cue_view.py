"""The cues' view of a frame: one scale whatever the camera sends (issue 16).

The fused stream's patches are 40 pixels of the frame as sent, so a wave is one
patch at 320×240 and ten at 1280×720; the cue detectors' thresholds are in
patches. :class:`CueView` scales every frame to 480 pixels high for the cues.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipecat_tandem.bench.caller.scenes import Person, Room, Wave
from pipecat_tandem.fusion.cue_core import patch_distances
from pipecat_tandem.fusion.cue_view import CueView
from pipecat_tandem.fusion.patches import PatchEmbedder


@pytest.fixture(scope="module")
def embedder() -> PatchEmbedder:
    return PatchEmbedder()


@pytest.mark.parametrize(
    ("size", "cols"), [((320, 240), 16), ((480, 360), 16), ((640, 480), 16), ((1280, 720), 21)]
)
def test_every_camera_size_gives_the_cues_patches_of_the_same_share_of_the_view(
    embedder, size, cols
):
    scene = Person(Room(0), wave=Wave(0.0, seconds=4.0))
    rgb = scene.render(0.5, size)
    emb = embedder.embed(rgb)
    view = CueView(embedder).embed(rgb, emb)
    assert view.shape == (12 * cols, embedder.dim)  # 12 rows: 40 px of 480
    # The stem alone keeps the camera's own grid; the view says which grid it gives.
    assert emb.shape[0] == (size[1] // 40) * (size[0] // 40)
    assert CueView(embedder).grid(size[1], size[0]) == (12, cols)


def test_a_scene_looks_the_same_to_the_cues_at_320x240_as_at_640x480(embedder):
    view = CueView(embedder)
    scene = Person(Room(1), seed=4)
    small, ref = scene.render(1.0, (320, 240)), scene.render(1.0, (640, 480))
    d = patch_distances(view.embed(small), view.embed(ref))
    # Patch by patch the same content (a little blurrier): far closer than two
    # different patches of one frame are.
    other = patch_distances(view.embed(ref), np.roll(view.embed(ref), 1, axis=0))
    assert float(np.median(d)) < 0.25 * float(np.median(other))


def test_at_the_views_height_the_streams_embeddings_are_used_as_they_are(embedder):
    rgb = Room(2).render(0.0, (640, 480))
    emb = embedder.embed(rgb)
    assert CueView(embedder).embed(rgb, emb) is emb


def test_the_pooled_stem_on_a_pooled_image_is_the_stem(embedder):
    rgb = Room(3).render(0.0, (640, 480))
    # Four times smaller by the stem's own 2x2 halvings: then the pooled stem has
    # exactly the stem's input.
    small = rgb.reshape(120, 4, 160, 4, 3).mean(axis=(1, 3))
    pooled = embedder.pooled().embed(np.round(small).astype(np.uint8))
    assert pooled.shape == embedder.embed(rgb).shape
    assert float(np.median(patch_distances(pooled, embedder.embed(rgb)))) < 0.02


def test_a_view_refuses_a_height_it_cannot_pool(embedder):
    with pytest.raises(ValueError, match="multiple of pool"):
        CueView(embedder, height=481)
    with pytest.raises(ValueError, match="at least one patch"):
        CueView(embedder, height=20)
    with pytest.raises(ValueError, match="RGB"):
        CueView(embedder).embed(np.zeros((240, 320), np.uint8))
