//! Rendering (job, dispatch, attempt) -> Mesos TaskInfo (see the helper brief).
