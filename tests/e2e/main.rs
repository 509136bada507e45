//! Integration tests: each one drives a real `layover serve` process over
//! HTTP, on a redb file in a temporary folder, with components built from
//! `workflows/`.

mod api;
mod crash;
mod durability;
mod expense;
mod fuzz;
mod openapi;
mod order;
mod restart;
mod sandbox;
mod support;
