//! The domain's account number and currency as PostgreSQL text: written as they are, and checked
//! again when read (a stored value that is not one is `Corrupt`, as in the sled codec).

use std::error::Error;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use crate::domain::{AccountNumber, Currency};

type BoxError = Box<dyn Error + Sync + Send>;

macro_rules! text_column {
    ($name:ident) => {
        impl ToSql for $name {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                Ok($name::parse(<&str as FromSql>::from_sql(ty, raw)?)?)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as FromSql>::accepts(ty)
            }
        }
    };
}

text_column!(AccountNumber);
text_column!(Currency);
