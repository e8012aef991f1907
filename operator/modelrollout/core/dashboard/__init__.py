"""The dashboard's pages, rendered as HTML strings from typed models (pure, no I/O).

:mod:`.page` holds the frame every page shares (navigation, style, notices),
:mod:`.rollouts` the ModelDeployment pages and their live region, :mod:`.timeline` the
entries of a rollout's timeline, and :mod:`.replays` the ReplayTest pages, whose charts
and tables are the replay report's (:mod:`modelrollout.core.replay.report`). The server
that reads the cluster and answers requests is :mod:`modelrollout.services.dashboard`.
"""
