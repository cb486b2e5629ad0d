"""The demo thread `realtime serve --demo` creates once: a small blog discussion, with replies,
a pingback and one troll for a moderator to remove."""

from __future__ import annotations

from .models import Draft
from .service import Service

SLUG = "night-hours-at-the-library"
TITLE = "Should the Town Library Stay Open Until Midnight?"
URL = "https://blog.example/2024/03/12/night-hours-at-the-library"

# (key, parent key, kind, author, e-mail, website, body)
COMMENTS: list[tuple[str, str | None, str, str, str | None, str | None, str]] = [
    ("mara", None, "comment", "Mara Lindqvist", "mara@example.org", None,
     "Yes, please. Half of my study group works evening shifts, and the reading room is the "
     "only quiet place within walking distance. Even *two* extra hours would change a lot."),
    ("tobias", "mara", "comment", "Tobias Rhee", "tobias@example.org", "https://rhee.example",
     "Two hours is a good start. The council minutes say staffing is the real cost, not "
     "electricity, so a volunteer rota might get it over the line."),
    ("mara2", "tobias", "comment", "Mara Lindqvist", "mara@example.org", None,
     "I would sign up for a rota. Does anyone know whether volunteers need a background check?"),
    ("priya", "mara2", "comment", "Priya Natarajan", "priya@example.org", None,
     "They do, but it is free and takes about a week. The form is at the front desk."),
    ("ping", None, "pingback", "Riverside Neighbourhood Notes", None,
     "https://riverside-notes.example/2024/03/13/library-hours",
     "[Riverside Neighbourhood Notes](https://riverside-notes.example/2024/03/13/library-hours)"
     ": a round-up of this week's debate on library opening hours."),
    ("gus", None, "comment", "Gus Okafor", "gus@example.org", None,
     "Playing devil's advocate: who is actually in a library at 11 pm? I would like to see "
     "numbers from a trial month before we commit the budget."),
    ("elin", "gus", "comment", "Elin Sørensen", "elin@example.org", None,
     "The university branch ran exactly that trial last autumn: 140 visitors a night on "
     "average, mostly after 9 pm. A trial month here sounds fair."),
    ("gus2", "elin", "comment", "Gus Okafor", "gus@example.org", None,
     "140 a night is more than I expected. Consider me persuaded on the trial."),
    ("troll", None, "comment", "FreeMoney4U", "winner@spam.example", "https://spam.example",
     "LIBRARIES ARE FOR LOSERS!!! Click here for free money: https://spam.example/win"),
    ("hana", None, "comment", "Hana Kowalski", "hana@example.org", None,
     "Whatever is decided, please keep the children's corner lit until closing. Late buses "
     "mean some kids wait there for their parents."),
]


async def create_demo(service: Service) -> bool:
    """Create the demo post and its thread unless it exists; True when created now."""
    post, created = await service.put_post(SLUG, {"title": TITLE, "url": URL,
                                                  "moderation": "post"})
    if not created and post.comment_count > 0:
        return False
    ids: dict[str, int] = {}
    for key, parent, kind, name, email, url, body in COMMENTS:
        draft = Draft(body=body, author_name=name, author_email=email, author_url=url,
                      parent_id=ids[parent] if parent else None, client_id=None, ip=None,
                      user_agent=None, kind=kind)
        result = await service.create_comment(SLUG, draft, check_author=False)
        ids[key] = result.comment.id
    return True
