# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["remove_cell"]
# **For analysts** (this note is left out of the report): the one notebook of every risk
# module. `dsarisk run` executes it once per module of the year's taxonomy
# (`assessment.yaml`), with that module's parameters; run it by hand for any module by
# changing them. Every number is computed by the `dsarisk` library from the year's input
# files; the notebook only lays the sections out. A section the module's inputs leave out
# (registry, questionnaire, factors, roadmap, published ratings) shows nothing, heading
# included. A module that needs more analysis names its own notebook in `assessment.yaml`
# (`notebook:`), taking the same parameters.

# %% tags=["parameters"]
year = 2024
module = None
data_dir = None
methodology = None
public = False
output_dir = None

# %%
# %matplotlib inline
from dsarisk.workbook import open_module

book = open_module(year=year, module=module, data_dir=data_dir, methodology=methodology, public=public)
book.title_block()

# %%
book.registry_section()

# %% [markdown]
# ## Probability

# %%
display(*filter(None, [book.proxies(), book.probability()]))

# %% [markdown]
# ## Severity

# %%
book.severity()

# %% [markdown]
# ## Inherent risk

# %%
book.inherent_heatmap()

# %%
book.mitigation_section()

# %%
book.questionnaire_chart()

# %% [markdown]
# ## Residual risk

# %%
book.post_control()

# %%
book.residual_heatmap()

# %%
book.published_check()

# %% [markdown]
# ## Year over year

# %%
book.previous_year()

# %%
book.factors()

# %%
book.roadmap()

# %% [markdown]
# ## Last year's commitments and what changed since

# %%
display(book.commitments(), book.changes())

# %% [markdown]
# ## Data quality

# %%
book.findings()

# %% tags=["remove_cell"]
book.save_results(output_dir)
