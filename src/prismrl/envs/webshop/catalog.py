"""Products: a seeded synthetic catalog ("WebShop-synthetic") and a loader for the original files.

Both produce the same product dicts, with the original WebShop field names, so the search engine,
the pages and the reward never know which source they run on:

    asin, name, Title, BulletPoints, Description, Attributes, pricing, Price, options,
    option_to_image, Rating, Reviews, category, query, product_category, MainImage

The original catalog (scraped Amazon pages, Google Drive only) cannot be fetched here; the
synthetic one keeps its shape: a few top categories, each with product types that share a search
query, a "›" category path, an attribute vocabulary and option groups, and many products per type
that differ in brand, attributes, options and price. Near-duplicates are the point: the agent has to
read attributes and options, not just find "a shampoo".
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

from prismrl.errors import MissingFile


@dataclass(frozen=True)
class ProductType:
    query: str  # what shoppers searched for; the reward's "same query" test uses it
    noun: str  # the head noun phrase of titles
    path: str  # product_category, "›"-separated as on Amazon
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    price: tuple[float, float] = (5.0, 50.0)
    article: str = "a"  # "a" (becomes "an" before a vowel), "a pair of", or "" for mass nouns


def _t(query, noun, path, attributes, options=None, price=(5.0, 50.0), article="a") -> ProductType:
    return ProductType(
        query, noun, path, tuple(attributes.split(", ")), {k: tuple(v.split(", ")) for k, v in (options or {}).items()}, price, article
    )


COLORS = "black, white, grey, navy blue, red, pink, beige, green, brown, purple"

# category -> product types. Option values are lower-case (the original lower-cases them) and never
# repeat across groups of one type, so a click on a value names exactly one group.
CATEGORIES: dict[str, tuple[ProductType, ...]] = {
    "beauty": (
        _t(
            "shampoo",
            "Shampoo",
            "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
            "sulfate free, paraben free, cruelty free, natural ingredients, color safe, argan oil, tea tree oil, for dry hair",
            {
                "size": "8 fl oz (pack of 1), 12 fl oz (pack of 1), 16 fl oz (pack of 1), 16 fl oz (pack of 2), 33.8 fl oz",
                "scent": "coconut, lavender, mint, citrus, unscented",
            },
            (6.0, 38.0),
        ),
        _t(
            "deodorant",
            "Deodorant",
            "Beauty & Personal Care › Personal Care › Deodorants & Antiperspirants › Deodorant",
            "aluminum free, long lasting, natural ingredients, cruelty free, baking soda free, for sensitive skin",
            {
                "scent": "bright citrus, cedarwood, eucalyptus, fresh cucumber, unscented",
                "size": "2.6 ounce (pack of 1), 2.6 ounce (pack of 2), 3 ounce (pack of 3)",
            },
            (5.0, 24.0),
        ),
        _t(
            "lipstick",
            "Lipstick",
            "Beauty & Personal Care › Makeup › Lips › Lipstick",
            "long lasting, matte finish, cruelty free, highly pigmented, moisturizing, vegan formula",
            {"color": "ruby red, nude, pink, plum, coral, mauve, berry"},
            (4.0, 28.0),
        ),
        _t(
            "face moisturizer",
            "Face Moisturizer",
            "Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers › Face Moisturizers",
            "hyaluronic acid, oil free, fragrance free, anti aging, spf 30, non comedogenic, for sensitive skin",
            {"size": "1.7 ounce, 2.5 ounce, 3.4 ounce, 1.7 ounce (pack of 2)"},
            (8.0, 55.0),
        ),
        _t(
            "hair extension",
            "Clip in Hair Extensions",
            "Beauty & Personal Care › Hair Care › Hair Extensions, Wigs & Accessories › Extensions",
            "natural looking, heat resistant, human hair, easy to use, tangle free, long straight",
            {"color": "black, dark brown, blonde, auburn, ash blonde", "size": "16 inch, 18 inch, 20 inch, 22 inch"},
            (15.0, 90.0),
        ),
        _t(
            "shampoo brush",
            "Shampoo Brush Scalp Massager",
            "Beauty & Personal Care › Hair Care › Styling Tools & Appliances › Hair Brushes",
            "soft silicone, for all hair types, ergonomic handle, easy to clean, for dry scalp, travel size",
            {"color": "pink, black, green, purple, white"},
            (4.0, 18.0),
        ),
        _t(
            "lip balm",
            "Lip Balm",
            "Beauty & Personal Care › Skin Care › Lip Care › Balms & Moisturizers",
            "long lasting, moisturizing, natural ingredients, spf 15, cruelty free, for dry lips",
            {"flavor name": "vanilla, mint, strawberry, honey, unflavored", "size": "0.15 ounce (pack of 1), 0.15 ounce (pack of 4)"},
            (2.5, 15.0),
        ),
    ),
    "electronics": (
        _t(
            "wireless earbuds",
            "Wireless Earbuds",
            "Electronics › Headphones, Earbuds & Accessories › Earbuds",
            "noise cancelling, bluetooth 5.0, water resistant, long battery life, fast charging, hands free calling",
            {"color": "black, white, navy blue, rose gold, green"},
            (18.0, 120.0),
            article="a pair of",
        ),
        _t(
            "phone case",
            "Phone Case",
            "Electronics › Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
            "shock absorbing, slim fit, wireless charging compatible, scratch resistant, heavy duty, raised edges",
            {"color": "black, clear, blue, pink, purple, green", "style": "iphone 13, iphone 13 pro, iphone 14, galaxy s22, pixel 7"},
            (6.0, 30.0),
        ),
        _t(
            "hdmi cable",
            "HDMI Cable",
            "Electronics › Television & Video › Accessories › Cables › HDMI Cables",
            "high speed, 4k hdr, gold plated, braided nylon, ethernet support, 48gbps bandwidth",
            {"size": "3 ft, 6 ft, 10 ft, 15 ft, 25 ft", "item package quantity": "1, 2, 5"},
            (5.0, 35.0),
        ),
        _t(
            "portable charger",
            "Portable Charger Power Bank",
            "Electronics › Cell Phones & Accessories › Chargers & Power Adapters › Portable Power Banks",
            "fast charging, usb c, compact design, led display, high capacity, airline approved",
            {"color": "black, white, blue, red", "capacity": "10000mah, 20000mah, 26800mah"},
            (15.0, 70.0),
        ),
        _t(
            "bluetooth speaker",
            "Bluetooth Speaker",
            "Electronics › Portable Audio & Video › Portable Speakers & Docks › Portable Bluetooth Speakers",
            "waterproof, stereo sound, long battery life, built-in microphone, deep bass, easy to carry",
            {"color": "black, blue, red, grey, teal"},
            (20.0, 150.0),
        ),
        _t(
            "screen protector",
            "Tempered Glass Screen Protector",
            "Electronics › Cell Phones & Accessories › Accessories › Screen Protectors",
            "scratch resistant, bubble free, case friendly, high definition, easy installation, 9h hardness",
            {"style": "iphone 13, iphone 13 pro, iphone 14, galaxy s22, pixel 7", "item package quantity": "1, 2, 3"},
            (5.0, 20.0),
        ),
        _t(
            "wireless charger",
            "Wireless Charger Pad",
            "Electronics › Cell Phones & Accessories › Chargers & Power Adapters › Wireless Chargers",
            "fast charging, slim design, led indicator, case friendly, usb c, overheat protection",
            {"color": "black, white, grey"},
            (10.0, 45.0),
        ),
    ),
    "grocery": (
        _t(
            "ground coffee",
            "Ground Coffee",
            "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Ground Coffee",
            "gluten free, non gmo, usda organic, fair trade, low acid, small batch roasted",
            {
                "flavor name": "hazelnut, french vanilla, dark roast, caramel, medium roast, breakfast blend",
                "size": "12 ounce (pack of 1), 12 ounce (pack of 2), 2 pound (pack of 1), 10 ounce (pack of 6)",
            },
            (7.0, 45.0),
            article="",
        ),
        _t(
            "protein bars",
            "Protein Bars",
            "Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars",
            "gluten free, low sugar, high protein, keto friendly, plant based, non gmo",
            {
                "flavor name": "chocolate chip, peanut butter, cookie dough, birthday cake, salted caramel",
                "size": "12 count (pack of 1), 12 count (pack of 2), 24 count (pack of 1)",
            },
            (12.0, 48.0),
            article="",
        ),
        _t(
            "green tea",
            "Green Tea Bags",
            "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Tea › Green Tea",
            "usda organic, non gmo, individually wrapped, kosher certified, sugar free, natural antioxidants",
            {"flavor name": "jasmine, mint, lemon ginger, matcha, honey", "size": "20 count (pack of 6), 40 count, 100 count"},
            (4.0, 30.0),
            article="",
        ),
        _t(
            "olive oil",
            "Extra Virgin Olive Oil",
            "Grocery & Gourmet Food › Pantry Staples › Cooking & Baking › Oils, Vinegars & Salad Dressings › Oils › Olive",
            "cold pressed, non gmo, gluten free, kosher certified, single origin, first harvest",
            {"size": "16.9 fl oz (pack of 1), 25.3 fl oz (pack of 1), 33.8 fl oz (pack of 1), 16.9 fl oz (pack of 2)"},
            (9.0, 42.0),
            article="",
        ),
        _t(
            "beef jerky",
            "Beef Jerky",
            "Grocery & Gourmet Food › Snack Foods › Jerky & Dried Meats › Jerky",
            "high protein, low fat, gluten free, no preservatives, grass fed, keto friendly",
            {
                "flavor name": "original, teriyaki, peppered, sweet and spicy, hickory smoked",
                "size": "2.85 ounce (pack of 4), 10 ounce (pack of 1), 3.25 ounce (pack of 8)",
            },
            (8.0, 40.0),
            article="",
        ),
        _t(
            "coffee creamer",
            "Coffee Creamer",
            "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee Creamers",
            "dairy free, sugar free, keto friendly, plant based, gluten free, shelf stable",
            {
                "flavor name": "hazelnut, french vanilla, caramel, sweet cream, coconut",
                "size": "16 fl oz (pack of 1), 32 fl oz (pack of 1), 16 fl oz (pack of 3)",
            },
            (4.0, 25.0),
            article="",
        ),
        _t(
            "protein powder",
            "Protein Powder",
            "Grocery & Gourmet Food › Sports Nutrition › Protein › Protein Powders",
            "gluten free, high protein, keto friendly, plant based, non gmo, low sugar",
            {
                "flavor name": "chocolate, vanilla, peanut butter, cookies and cream, unflavored",
                "size": "1 pound (pack of 1), 2 pound (pack of 1), 5 pound (pack of 1)",
            },
            (18.0, 70.0),
            article="",
        ),
    ),
    "fashion": (
        _t(
            "women's running shoes",
            "Women's Running Shoes",
            "Clothing, Shoes & Jewelry › Women › Shoes › Athletic › Running",
            "non slip, arch support, lightweight, breathable mesh, rubber sole, memory foam",
            {"color": "black, white, grey, pink, navy blue, purple", "size": "6, 6.5, 7, 7.5, 8, 8.5, 9, 10"},
            (25.0, 95.0),
            article="a pair of",
        ),
        _t(
            "men's t-shirt",
            "Men's T-Shirt",
            "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
            "machine wash, 100% cotton, slim fit, short sleeve, moisture wicking, tagless",
            {"color": COLORS, "size": "small, medium, large, x-large, xx-large"},
            (8.0, 30.0),
        ),
        _t(
            "women's dress",
            "Women's Casual Dress",
            "Clothing, Shoes & Jewelry › Women › Clothing › Dresses › Casual",
            "machine wash, v-neck, with pockets, elastic waist, polyester spandex, knee length",
            {"color": "black, navy blue, red, green, floral pink, beige", "size": "x-small, small, medium, large, x-large"},
            (18.0, 60.0),
        ),
        _t(
            "men's jeans",
            "Men's Jeans",
            "Clothing, Shoes & Jewelry › Men › Clothing › Jeans",
            "straight leg, machine wash, button closure, stretch denim, relaxed fit, five pocket",
            {
                "color": "dark wash, light wash, black, stonewash, medium indigo",
                "size": "30w x 30l, 32w x 30l, 32w x 32l, 34w x 32l, 36w x 32l",
            },
            (20.0, 70.0),
            article="a pair of",
        ),
        _t(
            "backpack",
            "Laptop Backpack",
            "Clothing, Shoes & Jewelry › Luggage & Travel Gear › Backpacks › Laptop Backpacks",
            "water resistant, laptop compartment, lightweight, usb charging port, anti theft, padded straps",
            {"color": "black, grey, navy blue, green, burgundy"},
            (20.0, 80.0),
        ),
        _t(
            "women's running shorts",
            "Women's Running Shorts",
            "Clothing, Shoes & Jewelry › Women › Clothing › Active › Active Shorts",
            "moisture wicking, lightweight, with pockets, elastic waist, quick dry, built-in liner",
            {"color": "black, grey, pink, navy blue, purple", "size": "x-small, small, medium, large, x-large"},
            (12.0, 40.0),
            article="a pair of",
        ),
        _t(
            "men's dress shirt",
            "Men's Dress Shirt",
            "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › Dress Shirts",
            "slim fit, machine wash, wrinkle free, long sleeve, button closure, 100% cotton",
            {"color": "white, light blue, black, pink, grey", "size": "small, medium, large, x-large, xx-large"},
            (18.0, 55.0),
        ),
    ),
    "garden": (
        _t(
            "throw pillow covers",
            "Throw Pillow Covers",
            "Home & Kitchen › Home Décor Products › Decorative Pillows, Inserts & Covers › Throw Pillow Covers",
            "machine washable, hidden zipper, soft velvet, double sided, farmhouse style, set of 2",
            {
                "color": "beige, grey, navy blue, mustard yellow, sage green, rust orange",
                "size": "16 x 16 inch, 18 x 18 inch, 20 x 20 inch, 12 x 20 inch",
            },
            (8.0, 35.0),
            article="",
        ),
        _t(
            "area rug",
            "Area Rug",
            "Home & Kitchen › Home Décor Products › Area Rugs, Runners & Pads › Area Rugs",
            "non slip, easy clean, low pile, stain resistant, for living room, pet friendly",
            {"color": "grey, blue, beige, multicolor, cream", "size": "3 ft x 5 ft, 5 ft x 7 ft, 8 ft x 10 ft, 2 ft x 8 ft"},
            (25.0, 220.0),
        ),
        _t(
            "solar pathway lights",
            "Solar Pathway Lights",
            "Patio, Lawn & Garden › Outdoor Décor › Outdoor Lighting › Pathway Lights",
            "waterproof, auto on off, stainless steel, warm white light, easy install, long lasting",
            {"item package quantity": "4, 6, 8, 12", "color": "warm white, cool white, multicolor"},
            (15.0, 60.0),
            article="",
        ),
        _t(
            "shower curtain",
            "Shower Curtain",
            "Home & Kitchen › Bath › Shower Curtains, Hooks & Liners › Shower Curtains",
            "waterproof, machine washable, mildew resistant, hooks included, weighted hem, quick drying",
            {"color": "white, grey, blue, sage, black and white", "size": "72 x 72 inch, 72 x 84 inch, 36 x 72 inch"},
            (10.0, 40.0),
        ),
        _t(
            "coffee table",
            "Coffee Table",
            "Home & Kitchen › Furniture › Living Room Furniture › Tables › Coffee Tables",
            "easy assembly, solid wood, storage shelf, mid century, metal frame, for living room",
            {"color": "walnut, black, white, espresso, rustic brown"},
            (45.0, 260.0),
        ),
        _t(
            "throw blanket",
            "Throw Blanket",
            "Home & Kitchen › Bedding › Blankets & Throws › Throws",
            "soft velvet, machine washable, lightweight, for couch, double sided, fade resistant",
            {"color": "beige, grey, navy blue, sage green, cream", "size": "50 x 60 inch, 60 x 80 inch"},
            (15.0, 50.0),
        ),
        _t(
            "bath rug",
            "Bath Rug",
            "Home & Kitchen › Bath › Bath Rugs",
            "non slip, machine washable, quick drying, absorbent, soft microfiber, for bathroom",
            {"color": "grey, white, blue, sage, beige", "size": "17 x 24 inch, 20 x 32 inch, 24 x 40 inch"},
            (8.0, 35.0),
        ),
    ),
}

BRANDS = (
    "Lumera Vantor Kestrel Orilla Brisa Nordal Quillo Zephra Solvi Tervo Aurelle Pinecrest Everkind "
    "Rivana Tallis Boreal Fennick Calyx Maplewood Odessa Halcyon Juniper Marlo Sable Corvana Tidewell "
    "Arden Nimbus Vireo Kinsley Larkspur Mirelle Ostara Pellman Quarry Roswell Saffra Tovani Umber Wrenfield"
).split()

# Closing words that keep titles distinct without touching the attributes the goals ask about.
EDITIONS = ("", "Classic", "Plus", "Pro", "Essentials", "Signature", "Everyday", "Select", "Premium Line", "Original")

_BULLETS = (
    "{ATTR}: as the label says, it is {phrase}.",
    "{ATTR} - like every {brand} product, it is {phrase}.",
    "{ATTR}. We check that it is {phrase} before it leaves our facility.",
)
_GENERIC_BULLETS = (
    "Satisfaction guarantee: if you are not happy with your purchase, contact us for a replacement or refund.",
    "What you get: {brand} {noun} and a quick start card.",
    "Thoughtfully designed by {brand} and checked by hand before shipping.",
    "Great gift idea for birthdays, holidays and everyday use.",
)
_REVIEWS = (
    ("Exactly what I wanted", 5, "Just as described. Would buy again."),
    ("Good value", 4, "Does the job well for the price. Shipping was quick."),
    ("Pretty good", 4, "I like it, although the packaging could be better."),
    ("It's okay", 3, "Not bad, not great. It works but I expected a bit more."),
    ("Love it", 5, "Second time ordering from {brand}. Highly recommend."),
)


def _phrase(attribute: str) -> str:
    # "for dry hair" reads as "made for dry hair"; "with pockets" as "made with pockets"
    return f"made {attribute}" if attribute.startswith(("for ", "with ")) else attribute


_SMALL_WORDS = frozenset("a an and for in of on to with".split())


def _title_case(text: str) -> str:
    return " ".join(w if any(c.isdigit() for c in w) or w in _SMALL_WORDS else w[:1].upper() + w[1:] for w in text.split())


def _price_tag(pricing: list[float]) -> str:
    # the original prints floats as Python does: "$12.99", "$100.0", "$10.5 to $19.99"
    return f"${pricing[0]}" if len(pricing) == 1 else f"${pricing[0]} to ${pricing[1]}"


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        asin = "B0" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _make_product(rng: random.Random, category: str, ptype: ProductType, asin: str, taken_titles: set[str]) -> dict[str, Any]:
    brand = rng.choice(BRANDS)
    n_attr = rng.randint(2, min(4, len(ptype.attributes)))
    attributes = sorted(rng.sample(ptype.attributes, n_attr), key=ptype.attributes.index)

    # Title: brand, up to two of the leading attributes, the noun, a "for ..." attribute if any, an
    # edition. Only some attributes reach the indexed text (title, description, first bullet); the
    # others sit in later bullets, so finding a match takes reading Features, as on real listings.
    lead = [a for a in attributes if not a.startswith(("for ", "with "))]
    lead = sorted(rng.sample(lead, min(rng.randint(0, 2), len(lead))), key=lead.index)
    tail = [a for a in attributes if a.startswith(("for ", "with "))][: rng.randint(0, 1)]
    for edition in itertools.chain(rng.sample(EDITIONS, len(EDITIONS)), (f"Series {i}" for i in itertools.count(2))):
        parts = [brand, *map(_title_case, lead), ptype.noun, *map(_title_case, tail)]
        title = " ".join(parts) + (f", {edition}" if edition else "")
        if title not in taken_titles:
            taken_titles.add(title)
            break

    noun = ptype.noun.lower()
    fill = dict(brand=brand, noun=noun)
    bullets = [rng.choice(_BULLETS).format(ATTR=a.upper(), phrase=_phrase(a), **fill) for a in attributes]
    rng.shuffle(bullets)
    generic = [b.format(**fill) for b in rng.sample(_GENERIC_BULLETS, 2)]
    bullets = [generic[0], *bullets, generic[1]] if rng.random() < 0.5 else [*bullets, *generic]
    untold = [a for a in attributes if a not in lead and a not in tail]
    told = sorted(rng.sample(untold, len(untold) // 2), key=attributes.index)
    features = (": " + ", ".join(_phrase(a) for a in told)) if told else ""
    description = f"{brand} {noun} for every day{features}. Every {brand} product is designed in house and made to last."

    options: dict[str, list[str]] = {}
    for group, values in ptype.options.items():
        k = rng.randint(2, min(4, len(values)))
        options[group] = sorted(rng.sample(values, k), key=values.index)

    low, high = ptype.price
    price = round(rng.uniform(low, high), 2)
    # about one product in ten has a price range, as original listings with several variants did
    pricing = [price, round(price * rng.uniform(1.2, 1.8), 2)] if rng.random() < 0.1 else [price]

    reviews = [{"title": t, "score": s, "body": b.format(**fill)} for t, s, b in rng.sample(_REVIEWS, rng.randint(0, 3))]
    rating = "N.A." if not reviews else round(sum(r["score"] for r in reviews) / len(reviews), 1)

    return {
        "asin": asin,
        "name": title,
        "Title": title,
        "BulletPoints": bullets,
        "Description": description,
        "Attributes": attributes,
        "pricing": pricing,
        "Price": _price_tag(pricing),
        "options": options,
        "option_to_image": {},
        "Rating": rating,
        "Reviews": reviews,
        "category": category,
        "query": ptype.query,
        "product_category": ptype.path,
        "MainImage": None,
    }


def generate_catalog(n_products: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """`n_products` synthetic products, spread evenly over every product type, in a seeded order."""
    rng = random.Random(f"webshop-catalog-{seed}")
    types = [(category, t) for category, ts in CATEGORIES.items() for t in ts]
    asins: set[str] = set()
    titles: set[str] = set()
    products = [_make_product(rng, *types[i % len(types)], _asin(rng, asins), titles) for i in range(n_products)]
    rng.shuffle(products)  # the original items_shuffle file is shuffled too
    return products


def product_prices(products: list[dict[str, Any]], seed: int = 0) -> dict[str, float]:
    """The price charged for each asin: the single price, or a seeded draw inside a price range.
    (The original drew ranges with the unseeded global `random`, so it was not reproducible.)"""
    rng = random.Random(f"webshop-prices-{seed}")
    prices = {}
    for p in products:
        pricing = p.get("pricing") or []
        if not pricing:
            prices[p["asin"]] = 100.0
        elif len(pricing) == 1:
            prices[p["asin"]] = float(pricing[0])
        else:
            prices[p["asin"]] = rng.uniform(*pricing[:2])
    return prices


# --- the original data files -------------------------------------------------------------------
#
#   items_shuffle_1000.json  list of scraped products: asin, name, full_description,
#                            small_description (str or list), pricing ("$12.99", "$9.99 - $19.99"),
#                            customization_options {group: [{value, image}] | null}, images,
#                            category, query, product_category
#   items_ins_v2_1000.json   {asin: {attributes, instruction, instruction_attributes}}
#   items_human_ins.json     {asin: [{instruction, instruction_attributes, instruction_options}]}
#   reviews.json (optional)  [{asin, average_rating, reviews: [{title, stars|score, review|body}]}]

ORIGINAL_FILES = {
    "products": ("items_shuffle_1000.json", "items_shuffle*.json"),
    "attributes": ("items_ins_v2_1000.json", "items_ins_v2*.json"),
    "human": ("items_human_ins.json", "items_human_ins*.json"),
    "reviews": ("reviews.json", "reviews*.json"),
}


def find_original_file(data_dir: str | Path, kind: str) -> Path | None:
    """The original's default file name first (the 1000-product version), else any match."""
    data_dir = Path(data_dir)
    default, pattern = ORIGINAL_FILES[kind]
    if (data_dir / default).exists():
        return data_dir / default
    matches = sorted(data_dir.glob(pattern))
    return matches[0] if matches else None


def _parse_pricing(text: Any) -> list[float]:
    if not text:
        return [100.0]
    if isinstance(text, (int, float)):
        return [float(text)]
    prices = []
    for part in str(text).split("$")[1:]:
        try:
            prices.append(float(Decimal(re.sub(r"[^\d.]", "", part))))
        except InvalidOperation:
            continue
    return prices[:2] or [100.0]


def _load_json(path: Path | None) -> Any:
    if path is None:
        return None
    with open(path) as f:
        return json.load(f)


def load_original_products(
    data_dir: str | Path, num_products: int | None = None, files: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Products from the original files, mapped to the internal dicts. Goal material rides along:
    human instructions as `instructions`, the synthetic ones as `instruction_text` /
    `instruction_attributes`, for `goals.original_goals`. `files` names the file of a kind
    exactly (a preset's); the other kinds are found by ORIGINAL_FILES."""
    files = dict(files or {})

    def file_of(kind: str) -> Path | None:
        if kind not in files:
            return find_original_file(data_dir, kind)
        path = Path(data_dir) / files[kind]
        if not path.exists():
            raise MissingFile(f"{path} not found: the chosen WebShop preset reads it")
        return path

    path = file_of("products")
    if path is None:
        raise MissingFile(f"no items_shuffle*.json in {data_dir}")
    raw = _load_json(path)
    attributes = _load_json(file_of("attributes")) or {}
    human = _load_json(file_of("human")) or {}
    reviews = {r["asin"]: r for r in _load_json(file_of("reviews")) or []}

    if num_products is not None:
        raw = raw[:num_products]  # the file is pre-shuffled, so a prefix is a fair sample
    products, seen = [], set()
    for p in raw:
        asin = str(p.get("asin", "nan"))
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)

        bullets = p.get("small_description") or []
        options: dict[str, list[str]] = {}
        option_to_image: dict[str, Any] = {}
        for group, contents in (p.get("customization_options") or {}).items():
            if contents is None:
                continue
            values = []
            for content in contents:
                # the original's normalisation: lower-case, "/" shown as " | "
                value = str(content["value"]).strip().replace("/", " | ").lower()
                values.append(value)
                option_to_image[value] = content.get("image")
            options[group.lower()] = values

        review = reviews.get(asin, {})
        pricing = _parse_pricing(p.get("pricing"))
        ins = attributes.get(asin, {})
        product = {
            "asin": asin,
            "name": p.get("name", ""),
            "Title": p.get("name", ""),
            "BulletPoints": bullets if isinstance(bullets, list) else [bullets],
            "Description": p.get("full_description") or "",
            "Attributes": ins.get("attributes") or ["DUMMY_ATTR"],
            "pricing": pricing,
            "Price": _price_tag(pricing),
            "options": options,
            "option_to_image": option_to_image,
            "Rating": review.get("average_rating", "N.A."),
            "Reviews": [
                {"title": r.get("title", ""), "score": r.get("score", r.get("stars", 0)), "body": r.get("body", r.get("review", ""))}
                for r in review.get("reviews", [])
            ],
            "category": p.get("category", ""),
            "query": str(p.get("query", "")).lower().strip(),
            "product_category": p.get("product_category", ""),
            "MainImage": (p.get("images") or [None])[0],
        }
        if asin in human:
            product["instructions"] = human[asin]
        if ins.get("instruction"):
            product["instruction_text"] = ins["instruction"]
            product["instruction_attributes"] = ins.get("instruction_attributes") or []
        products.append(product)
    return products
