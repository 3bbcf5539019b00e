"""music2emotion for beets: valence (sad to happy) and arousal (calm to energetic) of every
track, predicted offline, stored as float fields you can query.

Enable it in beets' config.yaml (install with ``pip install 'music2emotion[beets]'``)::

    plugins: music2emotion
    music2emotion:
        auto: no      # analyse tracks as they are imported
        write: no     # also write MUSIC2EMOTION_* tags into the files
        model: accurate   # or fast, or an ONNX model file
        jobs: 0       # worker processes; 0: every core
        include_not_music: no   # also give values to tracks that are not music

Then ``beet emotion [-f] [-w] [QUERY]`` fills ``valence`` and ``arousal`` (0-1, 4
decimals) and ``emotion_model``, and from a model with a mood head the quadrant
probabilities ``p_happy``, ``p_angry``, ``p_sad``, ``p_tender`` and the most probable word
``emotion_mood``; ``beet ls arousal:0.7..1``, ``beet ls p_sad:0.5..`` and
``beet ls -f '$title $valence'`` use them. Values already in a file's tags from the same
model (``music2emotion tag``) are taken as they are instead of predicting again. A
prediction's warning goes into ``emotion_warning``; a track the model hears no music in, in
most of its audio (speech, noise: ``not music: ...``), gets that warning and
``emotion_model`` but no values, so that queries and playlists leave it out and later runs
do not predict it again (``--include-not-music`` gives it values all the same).
docs/collection.md has the whole story.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin

from music2emotion.config import MOOD_COLUMNS
from music2emotion.music import is_not_music
from music2emotion.prediction import quadrant_mood

FIELDS = ("valence", "arousal")
MODEL_FIELD = "emotion_model"
MOOD_FIELD = "emotion_mood"  # the most probable quadrant word, beside emotion_model
WARNING_FIELD = "emotion_warning"  # the prediction's warning, when it had one
VALUE_FIELDS = (*FIELDS, *MOOD_COLUMNS, MOOD_FIELD)


class Music2EmotionPlugin(BeetsPlugin):
    # floats, so that range queries (arousal:0.5.., p_sad:0.6..) compare numbers, not text
    item_types = {f: types.Float(4) for f in (*FIELDS, *MOOD_COLUMNS)}

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"auto": False, "write": False, "model": None, "jobs": 0, "include_not_music": False})
        self._model: Any = None
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            # tags go into the files once beets has copied or moved them into place
            self.register_listener("import_task_files", self.imported_files)

    # --- command -----------------------------------------------------------------------------

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("emotion", help="predict valence and arousal (music2emotion)")
        cmd.parser.usage = "%prog [options] [QUERY]"
        cmd.parser.add_option("-f", "--force", action="store_true", default=False,
                              help="predict again items that already have values")
        cmd.parser.add_option("-w", "--write", action="store_true", default=None,
                              help="also write MUSIC2EMOTION_* tags into the files")
        cmd.parser.add_option("-W", "--nowrite", action="store_false", dest="write",
                              help="do not write tags (overrides the write option)")
        cmd.parser.add_option("-j", "--jobs", type="int", help="worker processes (default: every core)")
        cmd.parser.add_option("-m", "--model", help="accurate, fast, or an ONNX model file")
        cmd.parser.add_option("--include-not-music", action="store_true", default=None,
                              help="also give values to tracks that are not music (speech, noise)")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Any, opts: Any, args: list[str]) -> None:
        if opts.model:
            self.config["model"].set(opts.model)
        if opts.jobs is not None:
            if opts.jobs < 1:
                raise ui.UserError("--jobs must be at least 1")
            self.config["jobs"].set(opts.jobs)
        if opts.include_not_music:
            self.config["include_not_music"].set(True)
        write = self.config["write"].get(bool) if opts.write is None else opts.write
        done, failed, not_music = self.analyse(lib.items(args), force=opts.force, write=write)
        ui.print_(f"music2emotion: {done} items analysed, {failed} failed")
        if not_music:
            ui.print_(f"music2emotion: {not_music} items not music (no music heard in most of their audio: "
                      "speech, noise), left without values; --include-not-music gives them values")

    # --- import ------------------------------------------------------------------------------

    def imported(self, session: Any, task: Any) -> None:
        self.analyse(task.imported_items(), force=False, write=False)

    def imported_files(self, session: Any, task: Any) -> None:
        if self.config["write"].get(bool):
            self.write_items(i for i in task.imported_items() if i.get(FIELDS[0]) is not None)

    # --- the work ----------------------------------------------------------------------------

    def model(self) -> Any:
        """The model, loaded once; raises ``ui.UserError`` for a bad ``model`` setting."""
        if self._model is None:
            from music2emotion import EmotionModel
            from music2emotion.collection.tags import model_id

            try:
                model = EmotionModel(self.config["model"].get(), threads=1)
            except (FileNotFoundError, ValueError) as exc:
                raise ui.UserError(f"music2emotion: {exc}") from exc
            self._model = (model, model_id(model))
        return self._model

    def analyse(self, items: Iterable[Any], force: bool, write: bool) -> tuple[int, int, int]:
        """Fill in ``valence``, ``arousal`` and ``emotion_model`` for ``items`` that lack them
        (all with ``force``); items that are not music get ``emotion_warning`` instead, unless
        ``include_not_music`` is set. Returns (items done, items failed, items left without
        values as not music)."""
        from music2emotion import predict_files
        from music2emotion.collection.tags import TagError, read_tags

        model, mid = self.model()
        include = self.config["include_not_music"].get(bool)

        def known_not_music(item: Any) -> bool:  # by this model, on an earlier run
            return item.get(MODEL_FIELD) == mid and is_not_music(item.get(WARNING_FIELD, ""))

        todo = [i for i in items
                if force or (any(i.get(f) is None for f in FIELDS) and (include or not known_not_music(i)))]
        done = failed = not_music = 0
        to_predict, fresh = [], []
        for item in todo:
            stored = None
            if not force:
                try:
                    stored = read_tags(os.fsdecode(item.path))
                except TagError:
                    pass
            if stored is not None and stored.model == mid and stored.answer is not None:
                if is_not_music(stored.warning) and not include:
                    self._leave_out(item, stored.warning, mid)
                    not_music += 1
                    continue
                self._store(item, *stored.answer, stored.probabilities, stored.mood, mid, stored.warning,
                            "from its tags")
                done += 1
            else:
                to_predict.append(item)
        by_path = {os.fsdecode(i.path): i for i in to_predict}
        jobs = self.config["jobs"].get(int) or None
        try:
            for pred in predict_files(list(by_path), model, jobs=jobs, ordered=False):
                item = by_path[pred.path]
                if not pred.ok:
                    self._log.error("{}: {}", pred.path, pred.error)
                    failed += 1
                    continue
                if is_not_music(pred.warning) and not include:
                    self._leave_out(item, pred.warning, mid)
                    not_music += 1
                    continue
                probs = pred.probabilities
                self._store(item, pred.valence, pred.arousal, None if probs is None else tuple(probs.values()),
                            pred.mood, mid, pred.warning, "predicted")
                fresh.append(item)
                done += 1
        except RuntimeError as exc:  # the worker processes keep dying: the setup is broken
            raise ui.UserError(f"music2emotion: {exc}") from exc
        if write:
            failed += self.write_items(fresh)
        return done, failed, not_music

    def _store(self, item: Any, valence: float, arousal: float, probabilities: tuple[float, ...] | None,
               mood: str | None, mid: str, warning: str, how: str) -> None:
        item["valence"], item["arousal"] = round(float(valence), 4), round(float(arousal), 4)
        item[MODEL_FIELD] = mid
        if probabilities is None:  # a model without a mood head: none of an earlier model's
            for field in (*MOOD_COLUMNS, MOOD_FIELD):
                if field in item:
                    del item[field]
        else:
            for field, p in zip(MOOD_COLUMNS, probabilities):
                item[field] = round(float(p), 4)
            # the prediction's word: the quadrant of its values (a 0.3 model's: its head's top);
            # tags written without a word get the quadrant of theirs, not an earlier model's word
            item[MOOD_FIELD] = mood or quadrant_mood(item["valence"], item["arousal"])
        if warning:
            item[WARNING_FIELD] = warning
        elif WARNING_FIELD in item:
            del item[WARNING_FIELD]
        item.store()
        self._log.info("{}: valence {:.4f}, arousal {:.4f} ({})",
                       os.fsdecode(item.path), item["valence"], item["arousal"], how)

    def _leave_out(self, item: Any, warning: str, mid: str) -> None:
        """A track that is not music: the model and its warning, none of the values (of
        this run, or an earlier one), so range queries never find it."""
        for field in VALUE_FIELDS:
            if field in item:
                del item[field]
        item[MODEL_FIELD], item[WARNING_FIELD] = mid, warning
        item.store()
        self._log.info("{}: {} (left without values)", os.fsdecode(item.path), warning)

    def write_items(self, items: Iterable[Any]) -> int:
        """Write the stored values into the files' tags (see music2emotion.collection.tags);
        returns how many could not be written."""
        from music2emotion.collection.tags import EmotionTags, TagError, write_tags

        failed = 0
        for item in items:
            path = os.fsdecode(item.path)
            probs = tuple(float(item[f]) for f in MOOD_COLUMNS) if all(
                item.get(f) is not None for f in MOOD_COLUMNS) else None
            tags = EmotionTags(float(item["valence"]), float(item["arousal"]), str(item.get(MODEL_FIELD, "")),
                               probabilities=probs, warning=str(item.get(WARNING_FIELD, "")))
            try:
                write_tags(path, tags)
            except TagError as exc:
                self._log.error("{}: tags not written: {}", path, exc)
                failed += 1
                continue
            # the file changed because of us: keep beets from taking it for an outside edit
            item.mtime = item.current_mtime()
            item.store()
        return failed
