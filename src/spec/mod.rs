//! Job files (HCL, JSON) -> validated `model::Job`.
