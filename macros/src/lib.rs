//! `#[audited]`, the attribute form of `chronicle::audit::audited::Audited`: an async function whose
//! every call is recorded as one `FUNCTION` event (its arguments, masked; its result or error; the log
//! lines it emitted; a panic's message and backtrace; its duration; the user, app and assignation of
//! the change context it runs in; the notes it added). Use it through `chronicle::audit::audited`.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, FnArg, Ident, ItemFn, LitStr, Pat, Token, parse_macro_input};

/// The macro's arguments: `action = "…"`, `db = <expr>`, `skip(a, b)`, `user = "…"`, `app = "…"`.
struct Options {
    action: Option<LitStr>,
    db: Expr,
    skip: Vec<Ident>,
    user: Option<Expr>,
    app: Option<Expr>,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let (mut action, mut db, mut skip, mut user, mut app) =
            (None, None, Vec::new(), None, None);
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "skip" => {
                    let names;
                    syn::parenthesized!(names in input);
                    skip.extend(Punctuated::<Ident, Token![,]>::parse_terminated(&names)?);
                }
                "action" => {
                    input.parse::<Token![=]>()?;
                    action = Some(input.parse()?);
                }
                "db" => {
                    input.parse::<Token![=]>()?;
                    db = Some(input.parse()?);
                }
                "user" => {
                    input.parse::<Token![=]>()?;
                    user = Some(input.parse()?);
                }
                "app" => {
                    input.parse::<Token![=]>()?;
                    app = Some(input.parse()?);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown argument `{other}`: #[audited] takes action = \"…\", db = <expr>, \
                             skip(…), user = <expr> and app = <expr>"
                        ),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        let db = db.ok_or_else(|| {
            input.error(
                "#[audited] needs `db = <expr>`: the `&DatabaseConnection` its event is written to",
            )
        })?;
        Ok(Self {
            action,
            db,
            skip,
            user,
            app,
        })
    }
}

/// Records every call of an async function as one `FUNCTION` audit event, like
/// `Audited::new(action).args(…).run(db, body)`.
///
/// ```ignore
/// use chronicle::audit::audited::{audited, note};
///
/// #[audited(action = "nightly_cleanup", db = db, skip(client))]
/// async fn cleanup(db: &DatabaseConnection, client: &Client, older_than_days: u32) -> Result<u64, Error> {
///     note("started by cron");
///     purge(db, client, older_than_days).await
/// }
/// ```
///
/// - `db` (required): an expression of type `&DatabaseConnection` the event is written to; a parameter
///   it names is not recorded.
/// - `action`: the event's action (default: the function's name).
/// - `skip(a, b)`: parameters not recorded (`self` never is). The others are recorded by name, with
///   `serde::Serialize`, then masked like mutation arguments.
/// - `user`, `app`: expressions naming who the event records (default: the change context's).
///
/// The function returns `Result<T, E>` with `T: Serialize` (recorded as the output) and `E: Display`
/// (recorded as the error); a panic is recorded, then resumed.
#[proc_macro_attribute]
pub fn audited(args: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(args as Options);
    let function = parse_macro_input!(item as ItemFn);
    match expand(options, function) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(options: Options, function: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            "#[audited] goes on an async fn",
        ));
    }
    let action = options
        .action
        .unwrap_or_else(|| LitStr::new(&sig.ident.to_string(), sig.ident.span()));
    let db = &options.db;
    let db_param = match db {
        Expr::Path(path) => path.path.get_ident().cloned(),
        _ => None,
    };
    let mut recorded = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue; // self
        };
        let Pat::Ident(pat) = typed.pat.as_ref() else {
            continue; // a destructuring pattern has no one name
        };
        let name = &pat.ident;
        if options.skip.contains(name) || db_param.as_ref() == Some(name) {
            continue;
        }
        recorded.push(name.clone());
    }
    for skipped in &options.skip {
        let known = sig.inputs.iter().any(|input| match input {
            FnArg::Typed(typed) => {
                matches!(typed.pat.as_ref(), Pat::Ident(pat) if pat.ident == *skipped)
            }
            FnArg::Receiver(_) => false,
        });
        if !known {
            return Err(syn::Error::new(
                skipped.span(),
                format!("skip({skipped}): the function has no such parameter"),
            ));
        }
    }
    let syn::ReturnType::Type(_, output) = &sig.output else {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "#[audited] needs a function that returns Result<T, E> (T: Serialize, E: Display)",
        ));
    };
    let names = recorded.iter().map(ToString::to_string);
    let user = options.user.map(|user| quote!(.user(#user)));
    let app = options.app.map(|app| quote!(.app(#app)));
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let mut __audited_args = ::chronicle::audit::audited::Args::new();
            #( __audited_args.add(#names, &#recorded); )*
            ::chronicle::audit::audited::Audited::new(#action)
                #user
                #app
                .args(__audited_args)
                .run(#db, async move {
                    // Typed, so that `?` in the body knows the error it converts to.
                    let __audited_result: #output = #block;
                    __audited_result
                })
                .await
        }
    })
}
