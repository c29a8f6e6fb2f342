//! Black-box tests through HTTP (one test binary, so it links once).

// Table-driven tests spell their rows as tuples; naming each row type would hide the table.
#![allow(clippy::type_complexity)]

mod admin;
mod binary;
mod console;
mod console_browser;
mod crash;
mod docs;
mod durability;
mod empayre;
mod empayre_api;
mod empayre_reconcile;
mod empayre_register;
mod fake_empayre;
mod helpers;
mod hostile;
mod import;
mod openapi_examples;
mod orbipay_lookup;
mod orbipay_postings;
mod pg;
mod postgres;
mod readme;
mod reliability;
mod replay;
mod replicas;
mod repository;
mod secrets;
mod shutdown;
mod startup;
mod store_copy;
mod store_trouble;
mod test_ca;
mod throttle;
mod tls;
mod uniform_errors;
mod webdriver;
