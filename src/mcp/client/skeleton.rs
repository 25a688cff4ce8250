//! The skeleton of a reply: its `id`, whether it has an `error`, and
//! `result.isError`, read without building the rest. A load generator
//! needs no more to sort a call, and building whole replies cost it as
//! much CPU as sending the calls (see [`super::SendOptions::skeleton`]).

use serde::Deserialize;
use serde_json::Value;

/// What a load generator reads of a reply (see [`super::SendOptions::skeleton`]).
/// A member that is present counts, whatever its value, as in the full
/// `Value`; a repeated member or a reply of another shape fails this parse
/// and the reply is read whole.
#[derive(Deserialize)]
struct Skeleton {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    result: Option<ResultSkeleton>,
}

/// `result`'s `isError`, read from an object only (a derived struct would
/// take `[true]` as `{"isError": true}`).
struct ResultSkeleton {
    is_error: Option<Value>,
}

impl<'de> Deserialize<'de> for ResultSkeleton {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ResultSkeleton;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a result object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut is_error = None;
                while let Some(key) = a.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "isError" {
                        is_error = Some(a.next_value::<Value>()?);
                    } else {
                        a.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(ResultSkeleton { is_error })
            }
        }
        d.deserialize_map(V)
    }
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The skeleton of one reply object, if it has the known shape. (A derived
/// struct would also take an array, field by field.)
pub fn read(payload: &[u8]) -> Option<Value> {
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<Skeleton>(payload)
        .ok()
        .map(Skeleton::into_value)
}

impl Skeleton {
    fn into_value(self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("jsonrpc".into(), Value::from("2.0"));
        if let Some(id) = self.id {
            out.insert("id".into(), id);
        }
        if self.error.is_some() {
            out.insert("error".into(), Value::Object(serde_json::Map::new()));
        }
        if let Some(result) = self.result {
            let mut r = serde_json::Map::new();
            if let Some(e) = result.is_error {
                r.insert("isError".into(), e);
            }
            out.insert("result".into(), Value::Object(r));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skeleton_sorts_a_reply_as_the_whole_reply_does() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}],"structuredContent":{"a":[1,2]}}}"#,
            r#"{"jsonrpc":"2.0","id":"x","result":{"content":[],"isError":true}}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"isError":"yes"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"denied","data":{"k":1}}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":null}"#,
            r#"{"jsonrpc":"2.0","id":4}"#,
        ];
        for raw in cases {
            let full: Value = serde_json::from_str(raw).unwrap();
            let bones = read(raw.as_bytes()).unwrap();
            assert_eq!(bones.get("id"), full.get("id"), "{raw}");
            assert_eq!(
                crate::mcp::jsonrpc::is_denial(&bones),
                crate::mcp::jsonrpc::is_denial(&full),
                "{raw}"
            );
        }
        // Shapes it does not know are left to the whole parse.
        for raw in [
            r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#,
            r#"{"id":1,"id":2,"result":{}}"#,
            r#"{"id":1,"result":[1]}"#,
        ] {
            assert!(read(raw.as_bytes()).is_none(), "{raw}");
        }
    }
}
