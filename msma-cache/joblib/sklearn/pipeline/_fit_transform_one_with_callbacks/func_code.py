# first line: 1578
def _fit_transform_one_with_callbacks(
    transformer,
    X,
    y,
    weight,
    message_clsname="",
    message=None,
    params=None,
    *,
    caller,
    callback_ctx,
):
    with callback_ctx.propagate_callback_context(transformer):
        callback_ctx.call_on_fit_task_begin(estimator=caller, X=X, y=y)

        Xt, transformer = _fit_transform_one(
            transformer, X, y, weight, message_clsname, message, params
        )

        callback_ctx.call_on_fit_task_end(estimator=caller, X=Xt, y=y)

    return Xt, transformer
