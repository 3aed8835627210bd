"""Tracking logs as the LMS emits them to the event bus (``TrackingLogData``).

``data`` and ``context`` are JSON text, shaped like the LMS's: the context names the course
(``course_id``, ``org_id``), the learner (``user_id``, ``username``), the request (``path``,
``host``, ``ip``, ``agent``, ``session``...); browser events are posted to ``/event``. Only fake
values appear (see :mod:`sink.demo.world`).
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any, Final

import attrs

from sink.demo.world import Course, Learner, Thread
from sink.events import TrackingLogData

HOST: Final = "courses.example.com"
VIDEO_EVENTS: Final = ("load_video", "play_video", "pause_video", "seek_video", "stop_video")
#: Browsing events by weight; ``page_view`` stands for a server event named by the page's path.
BROWSING: Final = (
    ("page_view", 30.0),
    ("play_video", 20.0),
    ("pause_video", 12.0),
    ("load_video", 8.0),
    ("seek_video", 5.0),
    ("stop_video", 3.0),
    ("edx.ui.lms.sequence.next_selected", 12.0),
    ("edx.ui.lms.outline.selected", 4.0),
    ("problem_check", 6.0),
)
_NAMES, _WEIGHTS = zip(*BROWSING, strict=True)


@attrs.frozen
class Visit:
    """Who browses which course, in which session.

    Attributes:
        learner: The learner.
        course: The course run.
        session: The session id of their day.
    """

    learner: Learner
    course: Course
    session: str


def browsing(rng: random.Random, visit: Visit, moment: datetime) -> TrackingLogData:
    """A random browsing event: a page view, a video event, navigation or a practice problem."""
    name = rng.choices(_NAMES, _WEIGHTS)[0]
    if name == "page_view":
        return _page_view(rng, visit, moment)
    if name in VIDEO_EVENTS:
        return _video(rng, visit, moment, name)
    if name == "problem_check":
        return problem_check(rng, visit, moment, correct=rng.random() < 0.5)
    return _navigation(rng, visit, moment, name)


def problem_check(
    rng: random.Random, visit: Visit, moment: datetime, *, correct: bool
) -> TrackingLogData:
    """A learner's answer to a problem (the server event that makes grades change)."""
    problem = str(rng.choice(visit.course.problems))
    answer_id = f"{problem.rsplit('@', 1)[1]}_2_1"
    outcome = "correct" if correct else "incorrect"
    data = {
        "problem_id": problem,
        "answers": {answer_id: f"choice_{rng.randrange(4)}"},
        "grade": int(correct),
        "max_grade": 1,
        "success": outcome,
        "attempts": rng.randrange(1, 4),
        "correct_map": {answer_id: {"correctness": outcome, "hint": "", "msg": ""}},
        "state": {"done": True, "seed": 1, "student_answers": {}},
        "submission": {
            answer_id: {
                "answer": f"choice_{rng.randrange(4)}",
                "correct": correct,
                "input_type": "choicegroup",
                "response_type": "multiplechoiceresponse",
                "question": "Which of these statements is true?",
            }
        },
    }
    module = {"display_name": f"Checkpoint {rng.randrange(1, 13)}", "usage_key": problem}
    path = f"/courses/{visit.course.key}/xblock/{problem}/handler/xmodule_handler/problem_check"
    context = {**_context(visit, path), "module": module}
    return _log("problem_check", moment, data, context)


def enrollment_event(name: str, visit: Visit, moment: datetime, mode: str) -> TrackingLogData:
    """``edx.course.enrollment.activated`` / ``deactivated`` / ``mode_changed``."""
    user_id = visit.learner.user.id
    data = {"course_id": str(visit.course.key), "user_id": user_id, "mode": mode}
    return _log(name, moment, data, _context(visit, "/api/enrollment/v1/enrollment"))


def forum_event(
    name: str, visit: Visit, moment: datetime, thread: Thread, post_id: str
) -> TrackingLogData:
    """``edx.forum.thread.created`` / ``response.created`` / ``comment.created``."""
    data: dict[str, Any] = {
        "id": post_id,
        "commentable_id": thread.commentable_id,
        "category_name": thread.topic,
        "url": thread.url,
        "user_forums_roles": ["Student"],
        "user_course_roles": [],
        "truncated": False,
        "options": {"followed": name.endswith("thread.created")},
    }
    if post_id != thread.id:
        data["discussion"] = {"id": thread.id}
    path = f"/courses/{visit.course.key}/discussion/threads/{thread.id}/reply"
    return _log(name, moment, data, _context(visit, path))


def _page_view(rng: random.Random, visit: Visit, moment: datetime) -> TrackingLogData:
    block = rng.choice(visit.course.sequentials)
    path = f"/courses/{visit.course.key}/courseware/{block.block_id}/"
    return _log(path, moment, {"GET": {}, "POST": {}}, _context(visit, path))


def _video(rng: random.Random, visit: Visit, moment: datetime, name: str) -> TrackingLogData:
    duration = float(rng.randrange(180, 1500))
    position = round(rng.random() * duration, 3)
    data: dict[str, Any] = {
        "id": rng.choice(visit.course.videos),
        "code": rng.choice(("html5", "html5", "hls", "mobile")),
        "duration": duration,
    }
    if name == "seek_video":
        data |= {"old_time": position, "new_time": round(rng.random() * duration, 3)}
        data["type"] = "onSlideSeek"
    else:
        data["currentTime"] = position
    return _log(name, moment, data, _context(visit, "/event"))


def _navigation(rng: random.Random, visit: Visit, moment: datetime, name: str) -> TrackingLogData:
    tabs = rng.randrange(3, 12)
    data = {
        "current_tab": rng.randrange(1, tabs),
        "tab_count": tabs,
        "id": str(rng.choice(visit.course.sequentials)),
        "widget_placement": rng.choice(("top", "bottom")),
    }
    return _log(name, moment, data, _context(visit, "/event"))


def _context(visit: Visit, path: str) -> dict[str, Any]:
    learner, course = visit.learner, visit.course
    persona = learner.persona
    page = f"https://{HOST}/courses/{course.key}/courseware/"
    return {
        "course_id": str(course.key),
        "org_id": course.template.org,
        "enterprise_uuid": "" if learner.customer is None else str(learner.customer.uuid),
        "user_id": learner.user.id,
        "username": learner.user.pii.username,
        "path": path,
        "session": visit.session,
        "ip": persona.ip,
        "agent": persona.agent,
        "host": HOST,
        "referer": page,
        "accept_language": persona.language,
        "client_id": persona.client_id,
        "course_user_tags": {},
    }


def _log(
    name: str, moment: datetime, data: dict[str, Any], context: dict[str, Any]
) -> TrackingLogData:
    return TrackingLogData(
        name=name, timestamp=moment, data=json.dumps(data), context=json.dumps(context)
    )
