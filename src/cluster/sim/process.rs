//! Background simulator processes (filled in below).
