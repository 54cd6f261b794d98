# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # radient_async in a notebook
#
# Jupyter already runs an event loop, so `await` and `async with` work at the top level of a cell
# with the plain API: no `nest_asyncio`, no `asyncio.run`. Open a session with `async with` in the
# cell that uses it; its background pollers belong to that cell and are stopped when it ends.
#
# This notebook runs against the embedded local server, so it needs no account. With a real key,
# skip the server cell and write `radient_async.Session()` (it reads `RADIENT_API_KEY`).
# Open it with `jupytext --to ipynb examples/notebook.py`, or run it as it is in VS Code.

# %%
import radient_async
from radient_async.server import LocalServer, ServerConfig

server = LocalServer(ServerConfig(api_key="notebook-key", latency=0.3))
await server.start()
server.base_url

# %% [markdown]
# One generation. `await radient_async.gallery(...)` reads its images through the session and
# embeds them as small thumbnails (`data:` URIs), so the saved notebook still shows them after the
# server is gone. (A result also renders by itself, but from the server's URLs.)

# %%
async with radient_async.Session("notebook-key", server.base_url) as session:
    result = await session.generate("a lighthouse at dusk", num_images=2, image_size=(256, 256))
    lighthouse = await radient_async.gallery([result])  # inside the block: it reads the images
lighthouse

# %% [markdown]
# Watch a job's status changes as they happen, then save its images to disk.

# %%
async with radient_async.Session("notebook-key", server.base_url) as session:
    job = await session.submit("a red fox in the snow", image_size="square")
    async for update in job.updates():
        print(f"{job.request_id}: {update.status.value}")
    paths = await (await job).download("notebook-images/")
paths

# %% [markdown]
# A batch with a progress bar. `progress=True` draws tqdm's widget in Jupyter (the `progress`
# extra brings ipywidgets), one line updated in place in a kernel without ipywidgets, and a text
# bar in a terminal. Outcomes arrive as jobs finish, not in prompt order.

# %%
prompts = [f"a mountain lake, study {i}" for i in range(12)]
async with radient_async.Session("notebook-key", server.base_url) as session:
    outcomes = [
        outcome
        async for outcome in session.map(
            prompts, progress=True, download_to="notebook-images/", image_size=(128, 128)
        )
    ]
[outcome.index for outcome in outcomes]

# %% [markdown]
# The gallery lays outcomes out in prompt order (by `outcome.index`) and shows the saved files by
# their paths relative to this notebook's folder: no session or server needed any more.

# %%
lakes = await radient_async.gallery(outcomes, title=f"{len(outcomes)} lakes")
lakes

# %%
await server.stop()
