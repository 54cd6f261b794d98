# %% [markdown]
# # radient_async in a notebook
#
# Jupyter already runs an event loop, so `await` and `async with` work at the top level of a cell
# with the plain API — no `nest_asyncio`. Open the session with `async with` inside the cell that
# uses it (a session's background work belongs to the cell's task). This notebook runs against the
# embedded local server; with a real key, drop the server and use `radient_async.Session()`.

# %%
import radient_async
from radient_async.server import LocalServer, ServerConfig

server = LocalServer(ServerConfig(api_key="notebook-key", latency=0.2))
await server.start()

# %% [markdown]
# One generation; the result renders as its images.

# %%
async with radient_async.Session("notebook-key", server.base_url) as session:
    result = await session.generate("a lighthouse at dusk", num_images=2, image_size="square")
result

# %% [markdown]
# A batch with a progress bar (`tqdm.auto` shows a widget in Jupyter), then a grid of everything.

# %%
prompts = [f"a red fox in the snow, study {i}" for i in range(12)]
async with radient_async.Session("notebook-key", server.base_url) as session:
    outcomes = [o async for o in session.map(prompts, progress="tqdm", image_size="square")]
results = [o.result for o in outcomes if o.result is not None]

# %%
from IPython.display import HTML

HTML(radient_async.gallery_html(results, title=f"{len(results)} foxes"))

# %%
await server.stop()
