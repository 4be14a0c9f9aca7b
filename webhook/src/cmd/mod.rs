//! The webhook's subcommands, one file each: `irsa webhook serve` ([`serve`]) and `irsa webhook mutate`
//! ([`mutate`]).

pub mod mutate;
pub mod serve;
