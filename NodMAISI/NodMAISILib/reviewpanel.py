"""The NodMAISI module's Review section (Slicer side): what its widgets (in ``NodMAISI.ui``) do.

*Reading session*: opens a blinded study (``nodsynth turing build``) for a reader from its
``study.json`` alone - the key, kept beside the folder, is never opened - and shows one case at a time (fixed layout and
window, :meth:`ReviewLogic.showReadingCase`); Real / Synthetic (keys R / S) record the answer with
the confidence set (keys 1-5; none by default) and the seconds since the case was shown, appended at
once to the reader's CSV (:class:`nodsynth.review.reading.ReadingSession`); opening the study again
resumes at the first unanswered case. *Compare*: a real / synthetic pair compared in the job process
(:func:`NodMAISILib.compare.compare_for_view`) and shown side by side, with next / previous nodule.
*Evaluation report*: a finished ``nodsynth evaluate`` JSON as a table.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import qt
import slicer

from nodsynth.errors import InputError
from nodsynth.review.reading import ReadingSession
from NodMAISICommon.dependencies import ensure_packages
from NodMAISICommon.requirements import CORE_REQUIREMENTS

from .reviewlogic import remove_volume

COMPARE_TARGET = "NodMAISILib.compare:compare_for_view"
ANSWER_KEYS = {"R": "real", "S": "synthetic"}
CONFIDENCE_KEYS = ("1", "2", "3", "4", "5")
NO_CONFIDENCE = 0
"""The confidence box's 'none' value (the answer is recorded without a confidence)."""
REPORT_KINDS = {"fid": "2.5D FID on whole CTs (nodsynth evaluate fid)",
                "nodules": "FID / KID / MMD on nodule crops (nodsynth evaluate nodules)",
                "froc": "FROC lesion detectability (nodsynth evaluate froc)"}


def chosen_path(path) -> Optional[Path]:
    """A path field of the parameter node, or None when none is chosen (the wrapper's default is '.')."""
    text = str(path or "").strip()
    return None if text in ("", ".") else Path(text)


def required_path(path, what: str) -> Path:
    """:func:`chosen_path`, or an error asking for ``what``."""
    chosen = chosen_path(path)
    if chosen is None:
        raise InputError(f"choose {what}")
    return chosen


def reading_status(session: ReadingSession) -> str:
    """'Case k of n (phase)' for the case shown, or where the finished answers are."""
    case = session.current
    if case is None:
        return f"All {session.total} cases answered; the answers are in {session.path}"
    return f"Case {session.answered + 1} of {session.total} ({case.phase})"


class ReviewPanel:
    """Drives the Review widgets of a ``NodMAISIWidget`` (``widget.ui``, ``widget.logic``, its job runner)."""

    def __init__(self, widget) -> None:
        self.widget = widget
        self.ui = widget.ui
        self.session: Optional[ReadingSession] = None
        self.caseNode = None
        self._shownAt = 0.0
        self.view = None  # the last comparison shown (NodMAISILib.compare.ComparisonView)
        self.compareNode = None  # its real CT node
        self.noduleIndex = 0
        parent = slicer.util.mainWindow() or self.ui.reviewCollapsibleButton
        self.shortcuts = []
        for key, answer in ANSWER_KEYS.items():
            self._shortcut(parent, key, lambda answer=answer: self.answer(answer))
        for key in CONFIDENCE_KEYS:
            self._shortcut(parent, key, lambda value=int(key): self.setConfidence(value))
        self.ui.openStudyButton.connect("clicked(bool)", self.openStudy)
        self.ui.stopReadingButton.connect("clicked(bool)", self.stopReading)
        self.ui.realButton.connect("clicked(bool)", lambda: self.answer("real"))
        self.ui.syntheticButton.connect("clicked(bool)", lambda: self.answer("synthetic"))
        self.ui.compareButton.connect("clicked(bool)", self.compare)
        self.ui.previousNoduleButton.connect("clicked(bool)", lambda: self.stepNodule(-1))
        self.ui.nextNoduleButton.connect("clicked(bool)", lambda: self.stepNodule(1))
        self.ui.showReportButton.connect("clicked(bool)", self.showReport)
        self.ui.readingStatusLabel.text = "No study open."
        self.update()

    def _shortcut(self, parent, key: str, action) -> None:
        shortcut = qt.QShortcut(qt.QKeySequence(key), parent)
        shortcut.connect("activated()", action)
        self.shortcuts.append(shortcut)

    # ------------------------------------------------------------------ state
    @property
    def reading(self) -> bool:
        """A session is open and has a case to answer."""
        return self.session is not None and self.session.current is not None

    def update(self, active: bool = True) -> None:
        """Enable what the state allows; ``active=False`` (the module is not shown) silences the keys."""
        p = self.widget._parameterNode
        for shortcut in self.shortcuts:
            shortcut.enabled = active and self.reading
        for button in (self.ui.realButton, self.ui.syntheticButton):
            button.enabled = self.reading
        self.ui.stopReadingButton.enabled = self.session is not None
        self.ui.openStudyButton.enabled = bool(p and chosen_path(p.studyFolder) and p.readerName.strip())
        runner = self.widget.runner
        self.ui.compareButton.enabled = (runner.running and runner.applyButton is self.ui.compareButton) or bool(
            p and p.reviewReal and p.reviewSynthetic and (p.reviewLabelmap or p.reviewMask))
        count = len(self.view.centres_lps_mm) if self.view is not None else 0
        self.ui.previousNoduleButton.enabled = count > 0 and self.noduleIndex > 0
        self.ui.nextNoduleButton.enabled = count > 0 and self.noduleIndex < count - 1
        self.ui.noduleLabel.text = f"Nodule {self.noduleIndex + 1} of {count}" if count else ""
        self.ui.showReportButton.enabled = bool(p and chosen_path(p.reportFile))

    def forget(self) -> None:
        """The scene is closing: its nodes go, and with them the case shown and the comparison."""
        self.session, self.caseNode, self.view, self.compareNode, self.noduleIndex = None, None, None, None, 0
        self.ui.readingStatusLabel.text = "No study open."
        self.ui.compareSummaryLabel.text = ""
        self.ui.reportKindLabel.text = ""
        for view in (self.ui.reviewTableView, self.ui.reportTableView):
            view.setMRMLTableNode(None)

    def close(self) -> None:
        """The module is unloaded: its shortcuts go."""
        for shortcut in self.shortcuts:
            shortcut.enabled = False
            shortcut.setParent(None)
        self.shortcuts = []

    # ------------------------------------------------------------------ reading session
    def openStudy(self) -> None:
        """Start (or resume) the reader's session of the chosen study and show its first unanswered case."""
        p = self.widget._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not open the reading study.", waitCursor=True):
            folder = required_path(p.studyFolder, "the study folder (the one holding study.json)")
            self.stopReading()
            self.session = ReadingSession(folder, p.readerName.strip())
            self._showCurrent()

    def _showCurrent(self) -> None:
        case = self.session.current
        if case is None:
            remove_volume(self.caseNode)
            self.caseNode = None
        else:
            self.caseNode = self.widget.logic.showReadingCase(case, self.caseNode)
            self._shownAt = time.monotonic()
        self.ui.readingStatusLabel.text = reading_status(self.session)
        self.update()

    def setConfidence(self, value: int) -> None:
        if self.reading:
            self.ui.confidenceSpinBox.value = value

    def answer(self, answer: str) -> None:
        """Record ``answer`` for the case shown (with the confidence set and the seconds it was shown)
        and show the next case."""
        if not self.reading:
            return
        seconds = time.monotonic() - self._shownAt
        confidence = int(self.ui.confidenceSpinBox.value)
        with slicer.util.tryWithErrorDisplay("Could not record the answer.", waitCursor=True):
            self.session.answer(self.session.current.case_id, answer,
                                None if confidence == NO_CONFIDENCE else confidence, seconds)
            self.ui.confidenceSpinBox.value = NO_CONFIDENCE
            self._showCurrent()

    def stopReading(self) -> None:
        """Close the session (every answer is already on disk) and remove the case shown."""
        remove_volume(self.caseNode)
        self.session, self.caseNode = None, None
        self.ui.readingStatusLabel.text = "No study open."
        self.update()

    # ------------------------------------------------------------------ compare
    def compare(self) -> None:
        """Compare the chosen pair in the job process; the result is shown when it is done."""
        widget = self.widget
        if widget.toggleCancel(self.ui.compareButton):
            return
        p = widget._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start the comparison.", waitCursor=True):
            ensure_packages(CORE_REQUIREMENTS)  # the re-segmentation needs scikit-learn / scikit-image
            real, synthetic, *rest = widget.logic.compareInputs(p)
            uploads: list = []
            real = widget.storedInput(p.reviewReal, real, uploads)
            synthetic = widget.storedInput(p.reviewSynthetic, synthetic, uploads)
            realNode, syntheticNode = p.reviewReal, p.reviewSynthetic  # as they were when the job started
            widget.startJob(self.ui.compareButton, COMPARE_TARGET, (real, synthetic, *rest),
                            lambda view: self._onCompared(view, realNode, syntheticNode), uploads)

    def _onCompared(self, view, realNode, syntheticNode) -> None:
        table, _, _ = self.widget.logic.showComparison(view, realNode, syntheticNode)
        self.view, self.compareNode, self.noduleIndex = view, realNode, 0
        self.ui.reviewTableView.setMRMLTableNode(table)
        summary = view.summary
        text = f"{summary['reproduced']} of {summary['nodules']} nodules reproduced"
        if summary.get("bit_identical_fraction_outside") is not None:
            text += f"; bit-identical outside the edit: {100.0 * summary['bit_identical_fraction_outside']:.2f} %"
        self.ui.compareSummaryLabel.text = text
        self.update()

    def stepNodule(self, step: int) -> None:
        """Centre the views on the next (``step`` = 1) or previous (-1) nodule of the table."""
        if self.view is None or not self.view.centres_lps_mm:
            return
        self.noduleIndex = min(max(self.noduleIndex + step, 0), len(self.view.centres_lps_mm) - 1)
        self.widget.logic.jumpToNodule(self.view, self.noduleIndex, self.compareNode)
        self.update()

    # ------------------------------------------------------------------ evaluation report
    def showReport(self) -> None:
        p = self.widget._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not show the evaluation report.", waitCursor=True):
            path = required_path(p.reportFile, "a report file (the JSON of nodsynth evaluate fid, nodules or froc)")
            kind, table = self.widget.logic.showReport(path)
            self.ui.reportTableView.setMRMLTableNode(table)
            self.ui.reportKindLabel.text = REPORT_KINDS[kind]
