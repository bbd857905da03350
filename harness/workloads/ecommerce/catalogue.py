"""The shop's catalogue text: products with realistic titles, descriptions and prices from fixed word lists, and the
search queries shoppers type for them (pure functions, no I/O).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 502: "Product catalog with
search and filtering"; line 519: "Product Service: Catalog, search (Elasticsearch)"; line 513: "Sub-200ms for
search"). Search is only measured honestly over text that has real matches: a query must find products, some
queries many (a category's common noun), some few (a brand and a feature together), and relevance must rank them.
So the catalogue is built from word lists, deterministically from the run's generator:

- **Categories** (:data:`CATEGORIES`, 20 of them, roughly the top-level departments of a general store): each has its
  own nouns (the things it sells), features, materials, uses and a price level (median and lognormal sigma of a unit
  price in minor units: books around 15.00, laptops around 700.00).
- **A product** (:func:`make_product`): its category's noun, feature and material, one of the shared
  :data:`ADJECTIVES`, a brand from :data:`BRANDS` and, for half of them, a colour: the title
  ``"<Brand> <adjective> <feature> <noun>[, <colour>]"`` (``"Northwind Compact Wireless Headphones, Black"``) and a
  description of three to five sentences that repeat the noun and name the material and a use, as sellers write
  them (well within the contract's 200 and 2,000 characters). With about 150 products per category and 10 to 12
  nouns each, a noun alone matches a dozen or more products; with a brand or a feature, a few.
- **A query** (:func:`query_for`): what a shopper types looking for a product: the product's noun and up to two other
  words of its title, in title order (1, 2 or 3 words by ``word_weights``), the last word sometimes cut to a prefix
  of 3 letters or more (``prefix_p``: the contract matches the last word as a prefix, search as you type). Every such
  query matches the product it was drawn from (its title holds every word), and usually others.

Words are what the catalogue's tokenizer keeps (:func:`words`: runs of letters and digits, lower-cased, as FTS5's
``unicode61`` tokenizer splits ASCII text), so the workload can tell whether a hit holds the query's words.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from casemesh.services.ecommerce.contract import (
    DESCRIPTION_MAX_CHARS,
    MAX_PRICE_MINOR,
    TITLE_MAX_CHARS,
)


@dataclass(frozen=True)
class Category:
    """A department: its ID (``[a-z0-9-]``), what it sells, and its price level (minor units, lognormal)."""

    slug: str
    nouns: tuple[str, ...]
    features: tuple[str, ...]
    materials: tuple[str, ...]
    uses: tuple[str, ...]
    price_median_minor: int
    price_sigma: float = 0.6


CATEGORIES: tuple[Category, ...] = (
    Category("electronics", ("headphones", "earbuds", "speaker", "soundbar", "television", "projector", "camera",
                             "microphone", "turntable", "receiver", "charger", "drone"),
             ("wireless", "bluetooth", "noise-cancelling", "portable", "waterproof", "4k", "smart", "rechargeable"),
             ("aluminium", "plastic", "fabric", "glass", "steel"),
             ("home cinema", "travel", "music lovers", "gaming", "the office"), 12_000, 0.8),
    Category("computers", ("laptop", "monitor", "keyboard", "mouse", "router", "webcam", "tablet", "printer",
                           "dock", "drive", "desktop"),
             ("mechanical", "ergonomic", "gaming", "ultrawide", "portable", "mesh", "backlit", "usb-c"),
             ("aluminium", "plastic", "magnesium", "glass"),
             ("remote work", "students", "gaming", "video calls", "creative work"), 15_000, 1.0),
    Category("phones", ("smartphone", "case", "charger", "cable", "stand", "holder", "battery", "screen-protector",
                        "earphones", "smartwatch"),
             ("unlocked", "fast-charging", "magnetic", "shockproof", "slim", "wireless", "dual-sim", "waterproof"),
             ("silicone", "leather", "aluminium", "tempered glass", "nylon"),
             ("daily carry", "travel", "the car", "running", "the desk"), 3_000, 1.0),
    Category("home-kitchen", ("blender", "kettle", "toaster", "cookware", "knife", "skillet", "mixer", "grinder",
                              "airfryer", "teapot", "pan", "cutlery"),
             ("nonstick", "stainless", "cordless", "programmable", "compact", "induction", "dishwasher-safe",
              "electric"),
             ("stainless steel", "cast iron", "ceramic", "bamboo", "glass"),
             ("small kitchens", "family meals", "baking", "morning coffee", "meal prep"), 4_500, 0.7),
    Category("furniture", ("sofa", "armchair", "bookshelf", "desk", "bed", "wardrobe", "stool", "dresser", "table",
                           "bench", "mattress"),
             ("modular", "foldable", "upholstered", "solid-wood", "adjustable", "storage", "reclining", "stackable"),
             ("oak", "walnut", "pine", "velvet", "linen", "metal"),
             ("small apartments", "the living room", "the bedroom", "home offices", "guests"), 25_000, 0.7),
    Category("garden", ("hose", "planter", "lawnmower", "trimmer", "shovel", "sprinkler", "birdhouse", "greenhouse",
                        "rake", "pruner"),
             ("expandable", "cordless", "self-watering", "heavy-duty", "raised", "solar", "weatherproof", "compact"),
             ("galvanised steel", "cedar", "terracotta", "resin", "rubber"),
             ("balconies", "vegetable beds", "large lawns", "flower borders", "allotments"), 3_500, 0.8),
    Category("tools", ("drill", "screwdriver", "wrench", "hammer", "saw", "sander", "toolbox", "ladder", "level",
                       "clamp", "multimeter"),
             ("cordless", "brushless", "magnetic", "telescopic", "impact", "precision", "ratcheting", "laser"),
             ("chrome vanadium", "hardened steel", "fibreglass", "aluminium"),
             ("home repairs", "woodworking", "the garage", "professionals", "flat-pack assembly"), 5_000, 0.8),
    Category("toys", ("puzzle", "blocks", "doll", "robot", "kite", "scooter", "boardgame", "plush", "trainset",
                      "playhouse"),
             ("educational", "interactive", "remote-control", "wooden", "musical", "magnetic", "glow", "stem"),
             ("wood", "plastic", "plush fabric", "cardboard"),
             ("toddlers", "family game night", "ages 8 and up", "rainy days", "birthdays"), 2_500, 0.7),
    Category("books", ("novel", "cookbook", "biography", "atlas", "thriller", "anthology", "guide", "memoir",
                       "textbook", "comic"),
             ("hardcover", "paperback", "illustrated", "bestselling", "annotated", "collected", "pocket", "signed"),
             ("recycled paper", "cloth binding", "glossy paper"),
             ("book clubs", "students", "long flights", "gifts", "bedtime reading"), 1_500, 0.5),
    Category("clothing", ("jacket", "sweater", "hoodie", "shirt", "jeans", "dress", "coat", "leggings", "shorts",
                          "scarf", "socks"),
             ("slim-fit", "waterproof", "organic", "thermal", "lightweight", "oversized", "quilted", "stretch"),
             ("cotton", "merino wool", "denim", "linen", "fleece", "recycled polyester"),
             ("winter", "the gym", "the office", "weekends", "hiking"), 4_000, 0.6),
    Category("shoes", ("sneakers", "boots", "sandals", "loafers", "trainers", "slippers", "heels", "clogs",
                       "moccasins"),
             ("waterproof", "cushioned", "breathable", "non-slip", "lightweight", "insulated", "wide-fit", "trail"),
             ("leather", "suede", "mesh", "rubber", "canvas"),
             ("running", "walking", "the office", "winter", "festivals"), 7_000, 0.5),
    Category("jewelry", ("necklace", "ring", "bracelet", "earrings", "pendant", "watch", "brooch", "anklet",
                         "cufflinks"),
             ("handmade", "adjustable", "engraved", "vintage", "minimalist", "hypoallergenic", "gemstone", "layered"),
             ("sterling silver", "gold", "rose gold", "titanium", "pearl"),
             ("anniversaries", "everyday wear", "weddings", "gifts", "evenings out"), 6_000, 1.0),
    Category("beauty", ("serum", "moisturiser", "shampoo", "conditioner", "lipstick", "mascara", "perfume",
                        "cleanser", "sunscreen", "palette"),
             ("hydrating", "fragrance-free", "vegan", "long-lasting", "organic", "matte", "travel-size", "refillable"),
             ("aloe", "shea butter", "vitamin c", "argan oil", "hyaluronic acid"),
             ("dry skin", "sensitive skin", "daily use", "curly hair", "evenings"), 2_000, 0.6),
    Category("health", ("vitamins", "thermometer", "massager", "scale", "toothbrush", "bandages", "humidifier",
                        "supplement", "pillbox", "brace"),
             ("digital", "electric", "sugar-free", "rechargeable", "orthopedic", "ultrasonic", "travel", "chewable"),
             ("medical-grade silicone", "plastic", "memory foam", "cotton"),
             ("families", "recovery", "daily routines", "seniors", "athletes"), 2_500, 0.7),
    Category("sports", ("dumbbells", "yoga-mat", "treadmill", "racket", "football", "bicycle", "helmet", "gloves",
                        "kettlebell", "jump-rope"),
             ("adjustable", "non-slip", "foldable", "professional", "lightweight", "padded", "carbon", "indoor"),
             ("neoprene", "cast iron", "carbon fibre", "rubber", "foam"),
             ("home workouts", "the gym", "beginners", "competition", "cardio"), 4_000, 0.9),
    Category("outdoors", ("tent", "backpack", "sleeping-bag", "lantern", "stove", "hammock", "cooler", "compass",
                          "flask", "binoculars"),
             ("ultralight", "insulated", "waterproof", "solar", "collapsible", "four-season", "rugged", "compact"),
             ("ripstop nylon", "aluminium", "stainless steel", "down", "canvas"),
             ("camping", "hiking", "festivals", "fishing trips", "backpacking"), 6_000, 0.8),
    Category("automotive", ("dashcam", "jumpstarter", "wipers", "tyre-inflator", "seat-cover", "car-charger",
                            "floor-mats", "polish", "toolkit", "roof-box"),
             ("universal", "heavy-duty", "waterproof", "wireless", "all-weather", "portable", "magnetic", "led"),
             ("rubber", "leather", "microfibre", "aluminium", "abs plastic"),
             ("road trips", "winter driving", "daily commutes", "vans", "emergencies"), 4_000, 0.8),
    Category("pet-supplies", ("leash", "collar", "kibble", "litter", "aquarium", "scratcher", "pet-bed", "feeder",
                              "harness", "chew-toy"),
             ("grain-free", "orthopedic", "automatic", "reflective", "durable", "washable", "interactive", "calming"),
             ("nylon", "natural rubber", "memory foam", "sisal", "stainless steel"),
             ("puppies", "senior dogs", "indoor cats", "large breeds", "small pets"), 2_500, 0.7),
    Category("grocery", ("coffee", "tea", "chocolate", "olive-oil", "pasta", "honey", "granola", "spices", "rice",
                         "almonds"),
             ("organic", "fair-trade", "gluten-free", "roasted", "wholegrain", "cold-pressed", "single-origin",
              "raw"),
             ("glass jar", "resealable pouch", "tin", "paper bag"),
             ("breakfast", "baking", "gifts", "healthy snacking", "the pantry"), 900, 0.5),
    Category("office", ("notebook", "pen", "stapler", "planner", "binder", "whiteboard", "shredder", "lamp",
                        "organiser", "labeller"),
             ("refillable", "dotted", "heavy-duty", "ergonomic", "magnetic", "dimmable", "recycled", "compact"),
             ("recycled paper", "bamboo", "aluminium", "leather", "steel"),
             ("students", "home offices", "meetings", "journaling", "the classroom"), 1_200, 0.7),
)

#: Brands, shared by every category (made up).
BRANDS = ("Northwind", "Acme", "Bluepeak", "Kestrel", "Solano", "Vantage", "Harbor", "Evergreen", "Lumen", "Cobalt",
          "Redwood", "Orion", "Maple", "Zenith", "Tidewater", "Ironbark", "Juniper", "Polaris", "Sierra", "Aster",
          "Brightline", "Copperfield", "Driftwood", "Falcon", "Granite", "Hollis", "Meridian", "Nimbus", "Quarry",
          "Willow")
ADJECTIVES = ("premium", "classic", "compact", "deluxe", "essential", "everyday", "pro", "ultra", "elite", "signature",
              "heritage", "modern", "original", "advanced", "smart")
COLOURS = ("Black", "White", "Navy", "Grey", "Red", "Green", "Blue", "Beige", "Silver", "Olive", "Charcoal", "Rose")

#: Sentences of a description: ``{...}`` are filled from the product's words.
SENTENCES = (
    "{brand}'s {adjective} {noun}, made of {material}.",
    "{a_feature} {noun} built for {use}.",
    "Made of {material}, it is designed to last and easy to care for.",
    "Customers choose this {noun} for {use}.",
    "Its {feature} design keeps the {noun} simple to use every day.",
    "Backed by a two-year {brand} warranty.",
    "Ships in recyclable packaging within two business days.",
    "Compare it with other {category} from {brand} to find the right fit.",
)

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``: runs of letters and digits (``"Noise-Cancelling"`` → ``noise``,
    ``cancelling``), as the catalogue's FTS5 tokenizer splits ASCII text."""
    return [w.lower() for w in _WORD.findall(text)]


@dataclass(frozen=True)
class ProductText:
    """A product's catalogue fields before it is created: title, description, category, unit price (minor units),
    and the noun it is (what a shopper searches for)."""

    title: str
    description: str
    category: str
    price_minor: int
    noun: str


def draw_price(rng: random.Random, category: Category) -> int:
    """A unit price in minor units: lognormal around the category's median, rounded to end in 99 (a shop's price),
    within 99 .. the contract's largest price."""
    value = rng.lognormvariate(math.log(category.price_median_minor), category.price_sigma)
    price = max(1, round(value / 100)) * 100 - 1
    return min(max(price, 99), MAX_PRICE_MINOR)


def make_product(rng: random.Random, category: Category) -> ProductText:
    """A product of ``category`` drawn from ``rng`` (module docstring)."""
    brand, adjective = rng.choice(BRANDS), rng.choice(ADJECTIVES)
    noun, feature = rng.choice(category.nouns), rng.choice(category.features)
    material, use = rng.choice(category.materials), rng.choice(category.uses)
    title = f"{brand} {adjective.title()} {feature.title()} {noun.replace('-', ' ').title()}"
    if rng.random() < 0.5:
        title += f", {rng.choice(COLOURS)}"
    fill = {"brand": brand, "adjective": adjective, "noun": noun.replace("-", " "), "feature": feature,
            "material": material, "use": use, "category": category.slug.replace("-", " "),
            "a_feature": f"{'An' if feature[0] in 'aeiou' else 'A'} {feature}"}
    sentences = [SENTENCES[0], *rng.sample(SENTENCES[1:], rng.randint(2, 4))]
    description = " ".join(s.format(**fill) for s in sentences)
    return ProductText(title=title[:TITLE_MAX_CHARS], description=description[:DESCRIPTION_MAX_CHARS],
                       category=category.slug, price_minor=draw_price(rng, category), noun=noun)


def query_for(rng: random.Random, title: str, noun: str, word_weights: Sequence[float], prefix_p: float) -> str:
    """What a shopper types looking for the product titled ``title`` whose noun is ``noun`` (module docstring): the
    noun's words and up to two other title words, in title order, the last one cut to a prefix for ``prefix_p`` of
    queries. ``word_weights`` weigh 1, 2, 3 ... words (the noun counting as one)."""
    title_words = list(dict.fromkeys(words(title)))
    noun_words = words(noun)
    others = [w for w in title_words if w not in noun_words]
    extra = rng.choices(range(len(word_weights)), weights=word_weights)[0]
    chosen = set(rng.sample(others, min(extra, len(others)))) | set(noun_words)
    query = [w for w in title_words if w in chosen]
    last = query[-1]
    if len(last) > 3 and rng.random() < prefix_p:
        query[-1] = last[:rng.randint(3, len(last) - 1)]
    return " ".join(query)


def holds_query(text: str, query: str) -> bool:
    """True when ``text`` holds every word of ``query``, the last as a prefix (the contract's match rule)."""
    held = set(words(text))
    wanted = words(query)
    if not wanted:
        return False
    *whole, last = wanted
    return all(w in held for w in whole) and any(w.startswith(last) for w in held)
